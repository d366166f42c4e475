import { QUEUES } from '../queues/names.js';

/**
 * The SQL that turns just-inserted events into their webhook deliveries and their outbox jobs, as CTEs that follow
 * a CTE named `e` with the columns id, merchant_id, type and request_id (the request id the jobs carry, or null).
 * Events, deliveries and jobs are written by one statement: one round trip, and all or nothing. `e` may hold one
 * event or many (a batch of created payments, createPayment.ts).
 *
 * A delivery goes to every enabled endpoint of the event's merchant subscribed to its type (no list = every type,
 * `*` too); its first job is `<delivery id>-0`, so relaying the row twice still makes one job.
 */
export function fanOutCtes(): string {
  return `,
  subscribed AS (
    SELECT e.id AS event_id, w.id AS endpoint_id FROM e JOIN webhook_endpoints w ON w.merchant_id = e.merchant_id
     WHERE w.enabled AND w.deleted_at IS NULL AND (cardinality(w.events) = 0 OR e.type = ANY (w.events) OR '*' = ANY (w.events))
  ),
  deliveries AS (
    INSERT INTO webhook_deliveries (id, event_id, endpoint_id)
    SELECT payflow_new_id('whd'), s.event_id, s.endpoint_id FROM subscribed s
    RETURNING id, event_id
  ),
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

/** Instead, for the hot path that wakes the relay after commit (outbox/wakeRelay.ts): how many jobs it wrote. */
export const FAN_OUT_JOBS = `(SELECT count(*) FROM jobs)::int AS jobs`;
