import type { Db, Tx } from '../db.js';
import { newId } from '../ids.js';
import { enqueueInTx } from '../outbox/enqueue.js';
import { QUEUES } from '../queues/names.js';
import { WEBHOOK_TEST_EVENT_TYPE, presentEndpoint, type WebhookEndpointRow } from './endpoints.js';

export type DeliveryStatus = 'pending' | 'succeeded' | 'failed';

export interface WebhookDeliveryRow {
  seq: number;
  id: string;
  event_id: string;
  endpoint_id: string;
  status: DeliveryStatus;
  attempts: number;
  schedule_offset: number;
  next_attempt_at: Date;
  in_flight_until: Date | null;
  last_status_code: number | null;
  last_error: string | null;
  created_at: Date;
  updated_at: Date;
  /** Joined from events. */
  event_type?: string;
}

export interface WebhookAttemptRow {
  id: number;
  delivery_id: string;
  attempt: number;
  status_code: number | null;
  duration_ms: number;
  error: string | null;
  response_snippet: string | null;
  created_at: Date;
}

/** The API's delivery object: one event to one endpoint, with every attempt made, oldest first. */
export function presentDelivery(d: WebhookDeliveryRow, attempts: WebhookAttemptRow[]) {
  return {
    id: d.id,
    object: 'webhook_delivery' as const,
    endpoint_id: d.endpoint_id,
    event_id: d.event_id,
    event_type: d.event_type ?? null,
    status: d.status,
    attempt_count: d.attempts,
    next_attempt_at: d.status === 'pending' ? d.next_attempt_at.toISOString() : null,
    last_status_code: d.last_status_code,
    last_error: d.last_error,
    created_at: d.created_at.toISOString(),
    updated_at: d.updated_at.toISOString(),
    attempts: attempts.map((a) => ({
      attempt: a.attempt,
      status_code: a.status_code,
      duration_ms: a.duration_ms,
      error: a.error,
      response_snippet: a.response_snippet,
      created_at: a.created_at.toISOString(),
    })),
  };
}

/** Reads the attempts of several deliveries in one query, grouped by delivery id. */
export async function attemptsByDelivery(db: Db, deliveryIds: string[]): Promise<Map<string, WebhookAttemptRow[]>> {
  const rows: WebhookAttemptRow[] = deliveryIds.length
    ? await db('webhook_attempts').whereIn('delivery_id', deliveryIds).orderBy([{ column: 'delivery_id' }, { column: 'attempt' }])
    : [];
  const grouped = new Map<string, WebhookAttemptRow[]>(deliveryIds.map((id) => [id, []]));
  for (const r of rows) grouped.get(r.delivery_id)!.push(r);
  return grouped;
}

/**
 * Puts a finished (succeeded or failed) delivery back to pending for one more round: a new attempt now, and the
 * full retry schedule again if it fails. The event and so the `webhook-id` are unchanged, so a receiver that
 * already processed it can recognise the duplicate. Conditional on the status: a pending delivery is left alone.
 */
export async function redeliverInTx(trx: Tx, deliveryId: string): Promise<WebhookDeliveryRow | undefined> {
  const [row]: WebhookDeliveryRow[] = await trx('webhook_deliveries')
    .where({ id: deliveryId })
    .whereIn('status', ['succeeded', 'failed'])
    .update({
      status: 'pending',
      schedule_offset: trx.ref('attempts'),
      next_attempt_at: trx.fn.now(),
      in_flight_until: null,
      updated_at: trx.fn.now(),
    })
    .returning('*');
  if (!row) return undefined;
  await enqueueInTx(trx, [
    { queue: QUEUES.webhooks, name: 'deliver', jobId: `${row.id}-${row.attempts}-rd${Date.now()}`, payload: { deliveryId: row.id } },
  ]);
  return row;
}

/**
 * Records a `webhook.test` event and a delivery of it to this one endpoint, whatever the endpoint subscribed to.
 * It goes through the same pipeline (signing, retries, attempt log) as any event.
 */
export async function sendTestEventInTx(trx: Tx, endpoint: WebhookEndpointRow): Promise<{ eventId: string; deliveryId: string }> {
  const eventId = newId('evt');
  const deliveryId = newId('whd');
  await trx('events').insert({
    id: eventId,
    merchant_id: endpoint.merchant_id,
    type: WEBHOOK_TEST_EVENT_TYPE,
    data: JSON.stringify({ endpoint: presentEndpoint(endpoint), message: 'A test event from PayFlow.' }),
  });
  await trx('webhook_deliveries').insert({ id: deliveryId, event_id: eventId, endpoint_id: endpoint.id });
  await enqueueInTx(trx, [{ queue: QUEUES.webhooks, name: 'deliver', jobId: `${deliveryId}-0`, payload: { deliveryId } }]);
  return { eventId, deliveryId };
}
