import type { Knex } from 'knex';

// The five foreign keys checked on every payment's creation, dropped. Each was a trigger per inserted row: a lookup
// of the parent row and a FOR KEY SHARE lock on it, which writes the parent's tuple header (and WAL). Together they
// were ~22 of the ~78 µs Postgres spent on a payment's rows (the creation statement run alone, README
// "Performance", twelfth session), and two of them locked the same hot rows for every payment: the merchant's and
// its webhook endpoint's, which concurrent creations then share through a MultiXact.
//
// What they guarded holds by construction, and is checked by the fault suite's invariants after every fault:
// - events.payment_id, webhook_deliveries.event_id: the creating statement inserts the child rows from the parent
//   rows it has just inserted (createPayment.ts, fanOut.ts); later events are recorded for a payment row their
//   transaction has just read (and, for a transition, holds locked).
// - payments.merchant_id, events.merchant_id: the merchant comes from an authenticated API key, and the creating
//   statement joins the merchants row; webhook_deliveries.endpoint_id: the statement joins the endpoint.
// - No parent row is ever deleted: merchants and payments have no delete path, endpoints are soft-deleted.
// The other foreign keys stay: they are on rows written once per payment at most, off the creation path.
const DROPPED = [
  { table: 'payments', column: 'merchant_id', parent: 'merchants' },
  { table: 'events', column: 'merchant_id', parent: 'merchants' },
  { table: 'events', column: 'payment_id', parent: 'payments' },
  { table: 'webhook_deliveries', column: 'event_id', parent: 'events' },
  { table: 'webhook_deliveries', column: 'endpoint_id', parent: 'webhook_endpoints' },
];

export async function up(knex: Knex): Promise<void> {
  for (const { table, column, parent } of DROPPED) {
    await knex.raw(`ALTER TABLE ${table} DROP CONSTRAINT ${table}_${column}_fkey`);
    await knex.raw(`COMMENT ON COLUMN ${table}.${column} IS '${parent}.id (no foreign key: migration 20261127000001)'`);
  }
}

export async function down(knex: Knex): Promise<void> {
  for (const { table, column, parent } of DROPPED) {
    await knex.raw(`COMMENT ON COLUMN ${table}.${column} IS NULL`);
    await knex.raw(`ALTER TABLE ${table} ADD CONSTRAINT ${table}_${column}_fkey FOREIGN KEY (${column}) REFERENCES ${parent}(id)`);
  }
}
