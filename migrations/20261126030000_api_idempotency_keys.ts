import type { Knex } from 'knex';

// Merchant API guarantees that live in the schema:
// - idempotency_keys: the first response to a POST carrying `Idempotency-Key`, replayed for retries of the same
//   request. (scope, key) is the primary key, so of N concurrent requests with one key exactly one inserts its row
//   and runs; the rest wait for its response. Rows are deleted by the API after IDEMPOTENCY_RETENTION_HOURS.
// - one payment per (merchant, order_id): a unique partial index, so two racing creates cannot both win.
// - api_keys.seq for cursor pagination of a merchant's keys, like every other list.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE idempotency_keys (
      -- merchant id, or 'admin' for /admin routes
      scope text NOT NULL,
      -- sha256 (hex) of the Idempotency-Key: the key itself is never stored
      key text NOT NULL,
      -- sha256 of method, path and the canonical JSON body: a reused key with another request is refused
      request_hash text NOT NULL,
      status text NOT NULL DEFAULT 'in_progress' CHECK (status IN ('in_progress', 'completed')),
      response_status int,
      -- the JSON exactly as first sent, sealed with AES-256-GCM under a key derived from the Idempotency-Key and a
      -- server secret (it may hold a secret shown once, such as a new API key); see api/middleware/idempotency.ts
      response_body text,
      created_at timestamptz NOT NULL DEFAULT now(),
      -- refreshed by the request that holds the key; an in-progress row older than the lease is taken over
      locked_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (scope, key)
    );
    CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

    CREATE UNIQUE INDEX payments_merchant_order_id ON payments (merchant_id, order_id) WHERE order_id IS NOT NULL;

    CREATE INDEX events_merchant_type_seq ON events (merchant_id, type, seq);

    ALTER TABLE api_keys ADD COLUMN seq bigserial UNIQUE;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE api_keys DROP COLUMN seq;
    DROP INDEX events_merchant_type_seq;
    DROP INDEX payments_merchant_order_id;
    DROP TABLE idempotency_keys;
  `);
}
