import type { Tx } from '../db.js';
import { newId } from '../ids.js';
import { countPaymentEventOnCommit } from '../metrics.js';
import { FAN_OUT_RESULT, fanOutCtes } from './fanOut.js';

export interface EventRecord {
  id: string;
  type: string;
  created_at: string;
  data: unknown;
}

const RECORD_EVENT_SQL = `
  WITH e AS (
    INSERT INTO events (id, merchant_id, type, payment_id, data) VALUES (?, ?, ?, ?, ?)
    RETURNING id, merchant_id, type, created_at, ?::text AS request_id
  )${fanOutCtes()}
  SELECT e.created_at, ${FAN_OUT_RESULT} FROM e`;

/**
 * Records an event and, in the same transaction, one delivery per subscribed webhook endpoint plus the outbox
 * job that will deliver it (one statement, see fanOut.ts). The event exists only if the change that caused it
 * commits, and then every delivery is guaranteed to be attempted.
 */
export async function recordEvent(
  trx: Tx,
  e: { merchantId: string; type: string; paymentId?: string; data: unknown; requestId?: string },
): Promise<EventRecord> {
  const id = newId('evt');
  const { rows } = await trx.raw(RECORD_EVENT_SQL, [id, e.merchantId, e.type, e.paymentId ?? null, JSON.stringify(e.data), e.requestId ?? null]);
  countPaymentEventOnCommit(trx, e.type, e.data);
  return { id, type: e.type, created_at: (rows[0].created_at as Date).toISOString(), data: e.data };
}
