import type { Knex } from 'knex';

// Money columns are numeric(78,0): base units of up to uint256, exact. Ids are prefixed random strings; `seq`
// columns give a stable order for cursor pagination that concurrent inserts cannot reshuffle.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE merchants (
      id text PRIMARY KEY,
      name text NOT NULL,
      settlement_address text,
      created_at timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE api_keys (
      id text PRIMARY KEY,
      merchant_id text NOT NULL REFERENCES merchants(id),
      key_hash text NOT NULL UNIQUE,
      key_prefix text NOT NULL,
      scopes text[] NOT NULL DEFAULT '{read,write}',
      created_at timestamptz NOT NULL DEFAULT now(),
      revoked_at timestamptz
    );
    CREATE INDEX api_keys_merchant ON api_keys (merchant_id);

    -- One index per deposit address, across all chains, never reused.
    CREATE SEQUENCE deposit_address_index_seq MINVALUE 0 START 0;

    CREATE TABLE payments (
      seq bigserial UNIQUE,
      id text PRIMARY KEY,
      merchant_id text NOT NULL REFERENCES merchants(id),
      status text NOT NULL,
      exception text,
      chain_id bigint NOT NULL,
      currency text NOT NULL,
      token_address text,
      decimals int NOT NULL,
      amount numeric(78,0) NOT NULL CHECK (amount > 0),
      amount_received numeric(78,0) NOT NULL DEFAULT 0,
      -- shortfall accepted as paid in full (absolute base units, fixed at creation)
      underpaid_tolerance numeric(78,0) NOT NULL DEFAULT 0,
      address text NOT NULL UNIQUE,
      address_index bigint NOT NULL UNIQUE,
      confirmations_required int NOT NULL,
      order_id text,
      metadata jsonb NOT NULL DEFAULT '{}',
      expires_at timestamptz NOT NULL,
      confirmed_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX payments_merchant_seq ON payments (merchant_id, seq);
    CREATE INDEX payments_open_expiry ON payments (expires_at) WHERE status IN ('pending', 'confirming');
    CREATE INDEX payments_confirming ON payments (chain_id) WHERE status = 'confirming';

    -- A transfer seen on-chain to a deposit address. log_index is -1 for a native (ETH) transfer.
    -- Rows from blocks that a reorg removed are kept with orphaned_at set, so the history stays auditable;
    -- only live rows are unique, so a transaction re-included in another block is counted once.
    CREATE TABLE transfers (
      id bigserial PRIMARY KEY,
      chain_id bigint NOT NULL,
      tx_hash text NOT NULL,
      log_index int NOT NULL,
      block_number bigint NOT NULL,
      block_hash text NOT NULL,
      from_address text NOT NULL,
      to_address text NOT NULL,
      token_address text,
      amount numeric(78,0) NOT NULL,
      block_timestamp timestamptz NOT NULL,
      -- false when the asset is not the payment's (e.g. USDC sent to an ETH payment): recorded, never counted
      counted boolean NOT NULL,
      payment_id text NOT NULL REFERENCES payments(id),
      created_at timestamptz NOT NULL DEFAULT now(),
      orphaned_at timestamptz
    );
    CREATE UNIQUE INDEX transfers_live_unique ON transfers (chain_id, tx_hash, log_index) WHERE orphaned_at IS NULL;
    CREATE INDEX transfers_payment ON transfers (payment_id);
    CREATE INDEX transfers_chain_block ON transfers (chain_id, block_number) WHERE orphaned_at IS NULL;

    -- Where each chain's scanner is. genesis_hash pins the database to one chain: a node that answers with a
    -- different genesis is refused instead of mixing two chains' histories.
    CREATE TABLE chain_cursors (
      chain_id bigint PRIMARY KEY,
      genesis_hash text NOT NULL,
      next_block bigint NOT NULL,
      tip_timestamp timestamptz,
      updated_at timestamptz NOT NULL DEFAULT now()
    );

    -- Recent canonical blocks as the scanner saw them (parent hash -> hash), to detect reorgs.
    CREATE TABLE chain_blocks (
      chain_id bigint NOT NULL,
      number bigint NOT NULL,
      hash text NOT NULL,
      parent_hash text NOT NULL,
      timestamp timestamptz NOT NULL,
      PRIMARY KEY (chain_id, number)
    );

    CREATE TABLE events (
      seq bigserial UNIQUE,
      id text PRIMARY KEY,
      merchant_id text NOT NULL REFERENCES merchants(id),
      type text NOT NULL,
      payment_id text REFERENCES payments(id),
      data jsonb NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX events_merchant_seq ON events (merchant_id, seq);
    CREATE INDEX events_payment ON events (payment_id);

    CREATE TABLE webhook_endpoints (
      seq bigserial UNIQUE,
      id text PRIMARY KEY,
      merchant_id text NOT NULL REFERENCES merchants(id),
      url text NOT NULL,
      events text[] NOT NULL DEFAULT '{}',
      secret text NOT NULL,
      enabled boolean NOT NULL DEFAULT true,
      created_at timestamptz NOT NULL DEFAULT now(),
      deleted_at timestamptz
    );
    CREATE INDEX webhook_endpoints_merchant ON webhook_endpoints (merchant_id) WHERE deleted_at IS NULL;

    CREATE TABLE webhook_deliveries (
      seq bigserial UNIQUE,
      id text PRIMARY KEY,
      event_id text NOT NULL REFERENCES events(id),
      endpoint_id text NOT NULL REFERENCES webhook_endpoints(id),
      status text NOT NULL DEFAULT 'pending',
      attempts int NOT NULL DEFAULT 0,
      next_attempt_at timestamptz NOT NULL DEFAULT now(),
      last_status_code int,
      last_error text,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (event_id, endpoint_id)
    );
    CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';

    CREATE TABLE webhook_attempts (
      id bigserial PRIMARY KEY,
      delivery_id text NOT NULL REFERENCES webhook_deliveries(id),
      attempt int NOT NULL,
      status_code int,
      duration_ms int NOT NULL,
      error text,
      response_snippet text,
      created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id);

    -- Transactional outbox: jobs caused by a committed change, relayed to BullMQ by workers/outbox.
    CREATE TABLE outbox (
      id bigserial PRIMARY KEY,
      queue text NOT NULL,
      job_name text NOT NULL,
      job_id text NOT NULL,
      payload jsonb NOT NULL,
      run_at timestamptz NOT NULL DEFAULT now(),
      created_at timestamptz NOT NULL DEFAULT now()
    );
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    DROP TABLE outbox, webhook_attempts, webhook_deliveries, webhook_endpoints, events, chain_blocks, chain_cursors,
      transfers, payments, api_keys, merchants;
    DROP SEQUENCE deposit_address_index_seq;
  `);
}
