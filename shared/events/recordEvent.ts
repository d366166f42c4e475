import type { Tx } from '../db.js';
import { newId } from '../ids.js';
import { enqueueInTx } from '../outbox/enqueue.js';
import { QUEUES } from '../queues/names.js';
import { countPaymentEventOnCommit } from '../metrics.js';

export interface EventRecord {
  id: string;
  type: string;
  created_at: string;
  data: unknown;
}

/**
 * Records an event and, in the same transaction, one delivery per subscribed webhook endpoint plus the outbox
 * job that will deliver it. The event exists only if the change that caused it commits, and then every
 * delivery is guaranteed to be attempted.
 */
export async function recordEvent(
  trx: Tx,
  e: { merchantId: string; type: string; paymentId?: string; data: unknown; requestId?: string },
): Promise<EventRecord> {
  const id = newId('evt');
  const [row] = await trx('events')
    .insert({ id, merchant_id: e.merchantId, type: e.type, payment_id: e.paymentId ?? null, data: JSON.stringify(e.data) })
    .returning(['created_at']);
  const endpoints: { id: string }[] = await trx('webhook_endpoints')
    .select('id')
    .where({ merchant_id: e.merchantId, enabled: true })
    .whereNull('deleted_at')
    .andWhere((q) => q.whereRaw(`cardinality(events) = 0`).orWhereRaw(`? = ANY(events)`, [e.type]).orWhereRaw(`'*' = ANY(events)`));
  if (endpoints.length > 0) {
    const deliveries = endpoints.map((ep) => ({ id: newId('whd'), event_id: id, endpoint_id: ep.id }));
    await trx('webhook_deliveries').insert(deliveries);
    await enqueueInTx(
      trx,
      deliveries.map((d) => ({
        queue: QUEUES.webhooks,
        name: 'deliver',
        jobId: `${d.id}-0`,
        payload: { deliveryId: d.id, requestId: e.requestId },
      })),
    );
  }
  countPaymentEventOnCommit(trx, e.type, e.data);
  return { id, type: e.type, created_at: (row.created_at as Date).toISOString(), data: e.data };
}
