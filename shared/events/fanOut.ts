import { QUEUES } from '../queues/names.js';

/**
 * The SQL that turns a just-inserted event into its webhook deliveries and their outbox jobs, as CTEs that follow
 * a CTE named `e` (RETURNING id, merchant_id, type). Event, deliveries and jobs are written by one statement: one
 * round trip, and all or nothing. `requestId` is the placeholder (`?` or `$n`) of the request id the jobs carry.
 *
 * A delivery goes to every enabled endpoint of the merchant subscribed to the type (no list = every type, `*` too);
 * its first job is `<delivery id>-0`, so relaying the row twice still makes one job.
 */
export function fanOutCtes(requestId: string): string {
  return `,
  subscribed AS (
    SELECT w.id FROM webhook_endpoints w JOIN e ON w.merchant_id = e.merchant_id
     WHERE w.enabled AND w.deleted_at IS NULL AND (cardinality(w.events) = 0 OR e.type = ANY (w.events) OR '*' = ANY (w.events))
  ),
  deliveries AS (
    INSERT INTO webhook_deliveries (id, event_id, endpoint_id)
    SELECT payflow_new_id('whd'), e.id, subscribed.id FROM e, subscribed
    RETURNING id
  ),
  jobs AS (
    INSERT INTO outbox (queue, job_name, job_id, payload, run_at)
    SELECT '${QUEUES.webhooks}', 'deliver', deliveries.id || '-0',
           jsonb_strip_nulls(jsonb_build_object('deliveryId', deliveries.id, 'requestId', ${requestId}::text)), now()
      FROM deliveries
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
