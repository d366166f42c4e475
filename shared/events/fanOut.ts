import { QUEUES } from '../queues/names.js';

/**
 * The SQL that turns just-inserted events into their webhook deliveries, as CTEs that follow a CTE named `e` with
 * the columns id, merchant_id, type and request_id (the request id the jobs carry, or null). Events and deliveries
 * are written by one statement: one round trip, and all or nothing. `e` may hold one event or many (a batch of
 * created payments, createPayment.ts).
 *
 * A delivery goes to every enabled endpoint of the event's merchant subscribed to its type (no list = every type,
 * `*` too). Its first job, `<delivery id>-0` (so sending it twice still makes one job), either goes into the outbox
 * in the same statement (`fanOutCtes`), or is handed back to the caller to send after commit
 * (`fanOutDeliveryCtes` with FAN_OUT_DELIVERIES; shared/webhooks/dispatchDeliveries.ts).
 */
export function fanOutDeliveryCtes(): string {
  return `,
  subscribed AS (
    SELECT e.id AS event_id, w.id AS endpoint_id FROM e JOIN webhook_endpoints w ON w.merchant_id = e.merchant_id
     WHERE w.enabled AND w.deleted_at IS NULL AND (cardinality(w.events) = 0 OR e.type = ANY (w.events) OR '*' = ANY (w.events))
  ),
  deliveries AS (
    INSERT INTO webhook_deliveries (id, event_id, endpoint_id)
    SELECT payflow_new_id('whd'), s.event_id, s.endpoint_id FROM subscribed s
    RETURNING id, event_id
  )`;
}

export function fanOutCtes(): string {
  return `${fanOutDeliveryCtes()},
  jobs AS (
    INSERT INTO outbox (queue, job_name, job_id, payload, run_at)
    SELECT '${QUEUES.webhooks}', 'deliver', d.id || '-0',
           jsonb_strip_nulls(jsonb_build_object('deliveryId', d.id, 'requestId', e.request_id)), now()
      FROM deliveries d JOIN e ON e.id = d.event_id
    RETURNING 1
  )`;
}

/**
 * The select-list item that finishes a fan-out statement inside a larger transaction: a NOTIFY (delivered at
 * commit) that wakes the outbox relay at once instead of at its next poll, sent only when there are jobs.
 */
export const FAN_OUT_RESULT = `(SELECT pg_notify('payflow_outbox', '') WHERE EXISTS (SELECT 1 FROM jobs)) IS NOT NULL AS notified`;

/**
 * Instead, for the hot path whose first attempts are handed to the workers after commit (dispatchDeliveries.ts): the new
 * deliveries as a JSON array of [delivery id, request id or null].
 */
export const FAN_OUT_DELIVERIES = `(SELECT coalesce(json_agg(json_build_array(d.id, e.request_id)), '[]') FROM deliveries d JOIN e ON e.id = d.event_id) AS deliveries`;
