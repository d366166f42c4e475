import type { Knex } from 'knex';

// Settlement (moving a deposit's funds to the merchant or back to the payer), exactly once, and the ledger.
//
// sweeps: one row per payment that PayFlow moves funds for (UNIQUE payment_id: a deposit is swept once, for one
//   purpose). sweep_transactions: every signed transaction, stored BEFORE it is broadcast, with its raw bytes, so a
//   retry re-broadcasts the same bytes. UNIQUE (chain, sender, nonce, attempt): two different transactions can never
//   claim the same nonce of a deposit or of the gas tank; a fee bump of the same nonce is the next attempt.
// ledger_entries: append-only (a trigger refuses UPDATE and DELETE); entry_key makes each write idempotent.
// Non-custodial merchants: merchants.xpub; their payments derive addresses from it with a counter per xpub.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE merchants ADD COLUMN xpub text;
    CREATE TABLE xpub_address_counters (
      xpub text PRIMARY KEY,
      next_index bigint NOT NULL DEFAULT 0
    );

    ALTER TABLE payments
      ADD COLUMN custody text NOT NULL DEFAULT 'custodial' CHECK (custody IN ('custodial', 'non_custodial')),
      ADD COLUMN settlement jsonb,
      ADD COLUMN refund jsonb;
    -- Custodial indexes come from the global sequence; non-custodial ones from their xpub's counter, so only the
    -- custodial ones are unique (the address itself stays unique for every payment).
    ALTER TABLE payments DROP CONSTRAINT payments_address_index_key;
    CREATE UNIQUE INDEX payments_custodial_address_index ON payments (address_index) WHERE custody = 'custodial';
    CREATE INDEX payments_confirmed_chain ON payments (chain_id) WHERE status = 'confirmed';

    CREATE TABLE sweeps (
      seq bigserial UNIQUE,
      id text PRIMARY KEY,
      payment_id text NOT NULL UNIQUE REFERENCES payments(id),
      merchant_id text NOT NULL REFERENCES merchants(id),
      chain_id bigint NOT NULL,
      purpose text NOT NULL CHECK (purpose IN ('settlement', 'refund')),
      token_address text,
      deposit_address text NOT NULL,
      to_address text NOT NULL,
      -- pending: in flight; confirmed: mined with the chain's confirmations and recorded; skipped: nothing worth
      -- moving (balance below the fee); failed: mined but reverted, needs an operator
      status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'confirmed', 'skipped', 'failed')),
      tx_hash text,
      amount numeric(78,0),
      fee numeric(78,0),
      network_fee numeric(78,0),
      last_error text,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      confirmed_at timestamptz
    );
    CREATE INDEX sweeps_pending ON sweeps (chain_id) WHERE status = 'pending';

    CREATE TABLE sweep_transactions (
      id bigserial PRIMARY KEY,
      sweep_id text NOT NULL REFERENCES sweeps(id),
      chain_id bigint NOT NULL,
      role text NOT NULL CHECK (role IN ('sweep', 'gas_funding')),
      from_address text NOT NULL,
      to_address text NOT NULL,
      nonce bigint NOT NULL,
      attempt int NOT NULL,
      tx_hash text NOT NULL UNIQUE,
      raw_tx text NOT NULL,
      value numeric(78,0) NOT NULL,
      gas_limit numeric(78,0) NOT NULL,
      max_fee_per_gas numeric(78,0) NOT NULL,
      max_priority_fee_per_gas numeric(78,0) NOT NULL,
      broadcast_at timestamptz,
      mined_block bigint,
      gas_used numeric(78,0),
      effective_gas_price numeric(78,0),
      receipt_status int,
      created_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (chain_id, from_address, nonce, attempt)
    );
    CREATE INDEX sweep_transactions_sweep ON sweep_transactions (sweep_id);

    CREATE TABLE ledger_entries (
      seq bigserial UNIQUE,
      id text PRIMARY KEY,
      entry_key text NOT NULL UNIQUE,
      merchant_id text NOT NULL REFERENCES merchants(id),
      chain_id bigint NOT NULL,
      currency text NOT NULL,
      token_address text,
      decimals int NOT NULL,
      type text NOT NULL CHECK (type IN ('deposit_received', 'network_fee', 'settlement_out', 'refund_out')),
      -- signed base units: + credits the merchant's balance held by PayFlow, - debits it
      amount numeric(78,0) NOT NULL,
      payment_id text REFERENCES payments(id),
      sweep_id text REFERENCES sweeps(id),
      tx_hash text,
      created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX ledger_entries_merchant_seq ON ledger_entries (merchant_id, seq);
    CREATE INDEX ledger_entries_payment ON ledger_entries (payment_id);

    CREATE FUNCTION ledger_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION 'ledger_entries is append-only: % refused', TG_OP;
    END $$;
    CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
      FOR EACH ROW EXECUTE FUNCTION ledger_entries_append_only();
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    DROP TABLE ledger_entries, sweep_transactions, sweeps, xpub_address_counters;
    DROP FUNCTION ledger_entries_append_only();
    DROP INDEX payments_custodial_address_index;
    DROP INDEX payments_confirmed_chain;
    ALTER TABLE payments ADD CONSTRAINT payments_address_index_key UNIQUE (address_index);
    ALTER TABLE payments DROP COLUMN custody, DROP COLUMN settlement, DROP COLUMN refund;
    ALTER TABLE merchants DROP COLUMN xpub;
  `);
}
