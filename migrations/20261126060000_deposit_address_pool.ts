import type { Knex } from 'knex';

// deposit_address_pool: custodial deposit addresses derived ahead of time by the workers (index from
// deposit_address_index_seq, as before), so creating a payment does no elliptic-curve work on the request path.
// An API process takes a few at a time; an index taken and never used is a harmless gap (nothing is ever sent to
// an address no payment shows). wallet_fingerprint names the HD account they were derived from: a process only
// takes addresses of its own HD_MNEMONIC.
//
// payflow_new_id(prefix): the ids PayFlow makes in JavaScript (prefix_ + 22 base62 characters), for rows that one
// SQL statement fans out (webhook deliveries of an event). They name rows, they are not secrets: random() is
// enough, and the primary key catches the (astronomically unlikely) duplicate.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE deposit_address_pool (
      address_index bigint PRIMARY KEY,
      address text NOT NULL,
      wallet_fingerprint text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX deposit_address_pool_wallet ON deposit_address_pool (wallet_fingerprint, address_index);

    CREATE FUNCTION payflow_new_id(prefix text) RETURNS text LANGUAGE sql VOLATILE AS $$
      SELECT prefix || '_' || string_agg(substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 1 + floor(random() * 62)::int, 1), '')
        FROM generate_series(1, 22)
    $$;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP FUNCTION payflow_new_id(text); DROP TABLE deposit_address_pool;`);
}
