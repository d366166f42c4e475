import type { Knex } from 'knex';
import { up as createDeliveryFunctions } from './20261126051000_webhook_delivery_functions.js';

// Webhook delivery throughput (issue 7), second step. Run after the bench's POST and soak figures, deliveries/s
// fell to half of what they were on a fresh database. auto_explain showed two causes, one feeding the other:
// - The lease's update named its delivery by id *and* by status = 'pending' and next_attempt_at <= due. Once
//   autovacuum's statistics said few deliveries were pending (the POST figure left 100k failed ones), the planner
//   took the partial index of pending deliveries and walked every due entry (~5,000, 1.8 ms) instead of the
//   primary key (0.05 ms). The lease now reads, then locks, the delivery's row by id, checks its state in plpgsql,
//   and updates it by id alone.
// - That update ran under the endpoint's row lock, so every other attempt to the endpoint queued behind it (lock
//   waits averaged 1.2 ms). Now the endpoint's slots are locked only once the delivery's row is held: the critical
//   section is the in-flight count and one update by primary key (or the wake-up of a deferred delivery).
// The slots lock is a transaction-scoped advisory lock, not the endpoint's row lock: nothing that holds it ever
// waits for a row (it is always the last lock taken), so the order delivery-then-slots cannot deadlock with
// transactions that lock the endpoint's row and then its deliveries (disabling an endpoint fails its pending
// deliveries); and it writes nothing, where a row lock dirties the endpoint's page and writes WAL on every attempt.
// Every statement of a plpgsql function takes a new snapshot in READ COMMITTED, so the count made after the lock
// sees every lease and outcome committed by the previous holder.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    -- Serialises the changes to one endpoint's attempts in flight (a lease, an outcome, a wake-up) until commit.
    -- 0x7e6b: the key space of this lock (workers/settlement/locks.ts uses others).
    CREATE FUNCTION webhook_lock_endpoint_slots(p_endpoint_id text) RETURNS void
    LANGUAGE sql VOLATILE AS $fn$ SELECT pg_advisory_xact_lock(x'7e6b'::int, hashtext(p_endpoint_id)) $fn$;

    -- A slot of the endpoint just freed (the caller has already taken its delivery out of flight): under the
    -- slots lock, the delivery that has waited longest for one goes now. Returns the woken delivery's id, or NULL.
    CREATE OR REPLACE FUNCTION webhook_wake_deferred(p_endpoint_id text, p_now timestamptz, p_queue text) RETURNS text
    LANGUAGE plpgsql VOLATILE AS $fn$
    DECLARE
      woken record;
    BEGIN
      PERFORM webhook_lock_endpoint_slots(p_endpoint_id);
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

    CREATE OR REPLACE FUNCTION webhook_lease_delivery(
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
      -- A stale or duplicate job is told so from a plain read, without locking the row (a lock would make a
      -- wake-up's SKIP LOCKED pass over a deferred delivery that such a job merely looked at).
      SELECT * INTO found_delivery FROM webhook_deliveries WHERE id = p_delivery_id;
      IF NOT FOUND OR found_delivery.status <> 'pending' OR found_delivery.next_attempt_at > p_due_by THEN
        outcome := 'skipped';
        RETURN NEXT;
        RETURN;
      END IF;
      -- Then the delivery's row, locked, and its state checked again: settled for the rest of the transaction, so
      -- every update below names it by id alone. (A condition on its status as well let the planner pick the
      -- partial index of pending deliveries and walk thousands of them, whenever the table's statistics said few
      -- were pending: 1.8 ms instead of 0.05 ms per lease after the bench's POST figure.)
      SELECT * INTO found_delivery FROM webhook_deliveries WHERE id = p_delivery_id FOR NO KEY UPDATE;
      IF found_delivery.status <> 'pending' OR found_delivery.next_attempt_at > p_due_by THEN
        outcome := 'skipped';
        RETURN NEXT;
        RETURN;
      END IF;

      SELECT * INTO endpoint FROM webhook_endpoints WHERE id = found_delivery.endpoint_id;
      IF NOT FOUND OR endpoint.deleted_at IS NOT NULL OR NOT endpoint.enabled THEN
        UPDATE webhook_deliveries
           SET status = 'failed', last_error = 'endpoint disabled or deleted', in_flight_until = NULL, deferred_at = NULL, updated_at = p_now
         WHERE id = p_delivery_id;
        outcome := 'failed';
        RETURN NEXT;
        RETURN;
      END IF;

      -- The slots lock, then one update: the lease or the deferral. The row is already ours, so nothing below waits.
      -- Only "are p_concurrency others in flight?" matters, so the count stops there, newest leases first: the
      -- index also holds the entries of attempts that finished in the last timeout (their rows' older versions),
      -- oldest first, and a busy endpoint would walk thousands of them on every lease.
      PERFORM webhook_lock_endpoint_slots(endpoint.id);
      SELECT count(*) INTO in_flight FROM (
        SELECT 1 FROM webhook_deliveries WHERE endpoint_id = endpoint.id AND in_flight_until > p_now
         ORDER BY in_flight_until DESC LIMIT p_concurrency
      ) AS live;
      IF in_flight >= p_concurrency THEN
        -- Full: the delivery waits to be woken by the attempt that frees a slot, with a fallback job at
        -- p_defer_until; deferred_at keeps its first deferral, so the longest wait goes first.
        UPDATE webhook_deliveries
           SET next_attempt_at = p_defer_until, deferred_at = coalesce(deferred_at, p_now), updated_at = p_now
         WHERE id = p_delivery_id;
        INSERT INTO outbox (queue, job_name, job_id, payload, run_at)
        VALUES (p_queue, 'deliver', p_delivery_id || '-' || found_delivery.attempts || '-d' || floor(extract(epoch FROM p_defer_until) * 1000)::bigint,
                jsonb_build_object('deliveryId', p_delivery_id), p_defer_until);
        PERFORM pg_notify('payflow_outbox', '');
        outcome := 'deferred';
        RETURN NEXT;
        RETURN;
      END IF;

      -- The lease; next_attempt_at moves past the attempt too, so a re-queued duplicate job skips it meanwhile.
      UPDATE webhook_deliveries
         SET next_attempt_at = p_lease_next_attempt_at, in_flight_until = p_in_flight_until, deferred_at = NULL, updated_at = p_now
       WHERE id = p_delivery_id
      RETURNING * INTO leased;
      RETURN QUERY
        SELECT 'leased'::text, leased.attempts, leased.schedule_offset, endpoint.id, endpoint.url, endpoint.secret,
               endpoint.previous_secret, endpoint.previous_secret_expires_at, e.id, e.type, e.created_at, e.data
          FROM events e WHERE e.id = leased.event_id;
    END
    $fn$;

    -- A successful attempt: the endpoint no longer failing, the attempt's log row, the delivery succeeded and out
    -- of flight, then the freed slot handed to the oldest deferred delivery. Returns the woken delivery's id, or NULL.
    CREATE OR REPLACE FUNCTION webhook_record_success(
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
      -- First, as everywhere: the endpoint's row before its deliveries' rows.
      UPDATE webhook_endpoints SET failing_since = NULL WHERE id = p_endpoint_id AND failing_since IS NOT NULL;
      INSERT INTO webhook_attempts (delivery_id, attempt, status_code, duration_ms, error, response_snippet)
      VALUES (p_delivery_id, p_attempt, p_status_code, p_duration_ms, NULL, p_response_snippet);
      UPDATE webhook_deliveries
         SET status = 'succeeded', attempts = p_attempt, last_status_code = p_status_code, last_error = NULL,
             next_attempt_at = p_now, in_flight_until = NULL, updated_at = p_now
       WHERE id = p_delivery_id;
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
    DROP FUNCTION webhook_lock_endpoint_slots(text);
  `);
  await createDeliveryFunctions(knex);
}
