import type { Knex } from 'knex';

// Webhook delivery throughput (issue 7). Every change to an endpoint's deliveries that touches its in-flight cap
// (a lease, an attempt's outcome, the wake-up of a deferred delivery) runs under the endpoint's row lock, so the
// count of attempts in flight and the deferred deliveries to wake are always read after the last change committed.
// Done from the worker as a knex transaction, that lock was held across five client round trips per lease and
// three per outcome: with one busy endpoint the worker's Postgres connections spent ≈ 77 % of their time waiting
// for it (bench --pg-waits). As functions the same steps run inside Postgres, one round trip each, and the lock is
// held for well under a millisecond. In READ COMMITTED every statement of a plpgsql function takes a new snapshot,
// so a count made after the lock is taken sees what the previous holder committed, exactly as the separate
// statements did (one plain SQL statement could not: its snapshot predates the lock).
//
// The outbox rows they write have the shape shared/outbox/enqueue.ts writes, with the same NOTIFY.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    -- A slot of the endpoint just freed: the delivery that has waited longest for one goes now. The caller holds
    -- the endpoint's row lock. Returns the woken delivery's id, or NULL.
    CREATE FUNCTION webhook_wake_deferred(p_endpoint_id text, p_now timestamptz, p_queue text) RETURNS text
    LANGUAGE plpgsql VOLATILE AS $fn$
    DECLARE
      woken record;
    BEGIN
      SELECT d.id, d.attempts INTO woken FROM webhook_deliveries d
       WHERE d.endpoint_id = p_endpoint_id AND d.status = 'pending' AND d.deferred_at IS NOT NULL
         AND d.in_flight_until IS NULL
         -- Still waiting on its fallback timer, i.e. not already woken by another finishing attempt.
         AND d.next_attempt_at > p_now
       ORDER BY d.deferred_at LIMIT 1 FOR UPDATE SKIP LOCKED;
      IF NOT FOUND THEN
        RETURN NULL;
      END IF;
      UPDATE webhook_deliveries SET next_attempt_at = p_now, updated_at = p_now WHERE id = woken.id;
      INSERT INTO outbox (queue, job_name, job_id, payload, run_at)
      VALUES (p_queue, 'deliver', woken.id || '-' || woken.attempts || '-w' || floor(extract(epoch FROM p_now) * 1000)::bigint,
              jsonb_build_object('deliveryId', woken.id), p_now);
      PERFORM pg_notify('payflow_outbox', '');
      RETURN woken.id;
    END
    $fn$;

    -- Takes a delivery's lease for one attempt, or says why not: 'skipped' (done, failed, leased by another
    -- attempt, or the job is stale), 'failed' (endpoint disabled or deleted), 'deferred' (the endpoint has
    -- p_concurrency attempts in flight: the delivery waits to be woken, with a fallback job at p_defer_until),
    -- or 'leased' with what the attempt needs (the delivery's counters, the endpoint, the event).
    CREATE FUNCTION webhook_lease_delivery(
      p_delivery_id text,
      p_now timestamptz,
      p_due_by timestamptz,
      p_concurrency int,
      p_in_flight_until timestamptz,
      p_lease_next_attempt_at timestamptz,
      p_defer_until timestamptz,
      p_queue text
    ) RETURNS TABLE (
      outcome text,
      attempts int,
      schedule_offset int,
      endpoint_id text,
      url text,
      secret text,
      previous_secret text,
      previous_secret_expires_at timestamptz,
      event_id text,
      event_type text,
      event_created_at timestamptz,
      event_data jsonb
    )
    LANGUAGE plpgsql VOLATILE AS $fn$
    #variable_conflict use_column
    DECLARE
      found_delivery webhook_deliveries%ROWTYPE;
      leased webhook_deliveries%ROWTYPE;
      endpoint webhook_endpoints%ROWTYPE;
      in_flight int;
    BEGIN
      SELECT * INTO found_delivery FROM webhook_deliveries WHERE id = p_delivery_id;
      IF NOT FOUND OR found_delivery.status <> 'pending' OR found_delivery.next_attempt_at > p_due_by THEN
        outcome := 'skipped';
        RETURN NEXT;
        RETURN;
      END IF;

      SELECT * INTO endpoint FROM webhook_endpoints WHERE id = found_delivery.endpoint_id FOR UPDATE;
      IF NOT FOUND OR endpoint.deleted_at IS NOT NULL OR NOT endpoint.enabled THEN
        UPDATE webhook_deliveries
           SET status = 'failed', last_error = 'endpoint disabled or deleted', in_flight_until = NULL, deferred_at = NULL, updated_at = p_now
         WHERE id = p_delivery_id AND status = 'pending';
        outcome := 'failed';
        RETURN NEXT;
        RETURN;
      END IF;

      -- Only "are p_concurrency in flight?" matters, so stop there, newest leases first: the index also holds the
      -- entries of attempts that finished in the last timeout (their rows' older versions), oldest first, and a
      -- busy endpoint would walk thousands of them on every lease.
      SELECT count(*) INTO in_flight FROM (
        SELECT 1 FROM webhook_deliveries WHERE endpoint_id = endpoint.id AND in_flight_until > p_now
         ORDER BY in_flight_until DESC LIMIT p_concurrency
      ) AS live;
      IF in_flight >= p_concurrency THEN
        UPDATE webhook_deliveries
           SET next_attempt_at = p_defer_until, deferred_at = coalesce(deferred_at, p_now), updated_at = p_now
         WHERE id = p_delivery_id AND status = 'pending' AND next_attempt_at <= p_due_by;
        IF FOUND THEN
          INSERT INTO outbox (queue, job_name, job_id, payload, run_at)
          VALUES (p_queue, 'deliver', p_delivery_id || '-' || found_delivery.attempts || '-d' || floor(extract(epoch FROM p_defer_until) * 1000)::bigint,
                  jsonb_build_object('deliveryId', p_delivery_id), p_defer_until);
          PERFORM pg_notify('payflow_outbox', '');
        END IF;
        outcome := 'deferred';
        RETURN NEXT;
        RETURN;
      END IF;

      -- next_attempt_at moves past the attempt too, so a re-queued duplicate job skips it meanwhile.
      UPDATE webhook_deliveries
         SET next_attempt_at = p_lease_next_attempt_at, in_flight_until = p_in_flight_until, deferred_at = NULL, updated_at = p_now
       WHERE id = p_delivery_id AND status = 'pending' AND next_attempt_at <= p_due_by
      RETURNING * INTO leased;
      IF NOT FOUND THEN
        outcome := 'skipped';
        RETURN NEXT;
        RETURN;
      END IF;
      RETURN QUERY
        SELECT 'leased'::text, leased.attempts, leased.schedule_offset, endpoint.id, endpoint.url, endpoint.secret,
               endpoint.previous_secret, endpoint.previous_secret_expires_at, e.id, e.type, e.created_at, e.data
          FROM events e WHERE e.id = leased.event_id;
    END
    $fn$;

    -- Records a successful attempt: the attempt's log row, the delivery succeeded and out of flight, the endpoint
    -- no longer failing, and the freed slot handed to the oldest deferred delivery. Returns the woken delivery's
    -- id, or NULL.
    CREATE FUNCTION webhook_record_success(
      p_delivery_id text,
      p_endpoint_id text,
      p_attempt int,
      p_status_code int,
      p_duration_ms int,
      p_response_snippet text,
      p_now timestamptz,
      p_queue text
    ) RETURNS text
    LANGUAGE plpgsql VOLATILE AS $fn$
    BEGIN
      PERFORM 1 FROM webhook_endpoints WHERE id = p_endpoint_id FOR UPDATE;
      INSERT INTO webhook_attempts (delivery_id, attempt, status_code, duration_ms, error, response_snippet)
      VALUES (p_delivery_id, p_attempt, p_status_code, p_duration_ms, NULL, p_response_snippet);
      UPDATE webhook_deliveries
         SET status = 'succeeded', attempts = p_attempt, last_status_code = p_status_code, last_error = NULL,
             next_attempt_at = p_now, in_flight_until = NULL, updated_at = p_now
       WHERE id = p_delivery_id;
      UPDATE webhook_endpoints SET failing_since = NULL WHERE id = p_endpoint_id AND failing_since IS NOT NULL;
      RETURN webhook_wake_deferred(p_endpoint_id, p_now, p_queue);
    END
    $fn$;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    DROP FUNCTION webhook_record_success(text, text, int, int, int, text, timestamptz, text);
    DROP FUNCTION webhook_lease_delivery(text, timestamptz, timestamptz, int, timestamptz, timestamptz, timestamptz, text);
    DROP FUNCTION webhook_wake_deferred(text, timestamptz, text);
  `);
}
