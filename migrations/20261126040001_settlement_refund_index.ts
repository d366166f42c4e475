import type { Knex } from 'knex';

// The settlement reconciler looks for refunds to carry out on every pass: keep that lookup off the (large) set of
// expired payments that nobody asked to refund.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`CREATE INDEX payments_refund_requested ON payments (seq) WHERE status = 'expired' AND resolution = 'refund'`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP INDEX payments_refund_requested`);
}
