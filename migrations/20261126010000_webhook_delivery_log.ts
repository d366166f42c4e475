import type { Knex } from 'knex';

// Durable webhooks (issue 5): secret rotation with a grace period, automatic disabling of endpoints that only
// fail, and a per-endpoint cap on attempts in flight so one hanging endpoint cannot hold every worker slot.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE webhook_endpoints
      -- After a rotation the old secret still signs (a second signature in webhook-signature) until this time.
      ADD COLUMN previous_secret text,
      ADD COLUMN previous_secret_expires_at timestamptz,
      -- First failed attempt since the last success; the endpoint is disabled once it is older than
      -- WEBHOOK_DISABLE_AFTER_DAYS.
      ADD COLUMN failing_since timestamptz,
      ADD COLUMN disabled_reason text,
      ADD COLUMN disabled_at timestamptz,
      ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();

    ALTER TABLE webhook_deliveries
      -- Set while an attempt is running (until its timeout plus a margin): counts against the endpoint's cap.
      ADD COLUMN in_flight_until timestamptz,
      -- Set while the delivery waits for a free slot of its endpoint; a finishing attempt wakes the oldest.
      ADD COLUMN deferred_at timestamptz,
      -- attempts already made before the current retry round (a manual redelivery starts a new round).
      ADD COLUMN schedule_offset int NOT NULL DEFAULT 0;
    CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, seq);
    CREATE INDEX webhook_deliveries_in_flight ON webhook_deliveries (endpoint_id, in_flight_until)
      WHERE in_flight_until IS NOT NULL;
    CREATE INDEX webhook_deliveries_deferred ON webhook_deliveries (endpoint_id, deferred_at)
      WHERE deferred_at IS NOT NULL AND status = 'pending';
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    DROP INDEX webhook_deliveries_endpoint, webhook_deliveries_in_flight, webhook_deliveries_deferred;
    ALTER TABLE webhook_deliveries DROP COLUMN in_flight_until, DROP COLUMN deferred_at, DROP COLUMN schedule_offset;
    ALTER TABLE webhook_endpoints DROP COLUMN previous_secret, DROP COLUMN previous_secret_expires_at,
      DROP COLUMN failing_since, DROP COLUMN disabled_reason, DROP COLUMN disabled_at, DROP COLUMN updated_at;
  `);
}
