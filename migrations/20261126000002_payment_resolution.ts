import type { Knex } from 'knex';

// A merchant's answer to a late payment (POST /api/v1/payments/:id/resolve): accept → confirmed, refund → the
// funds go back (settlement acts on it). Tolerance settings live on the merchant and are copied to each payment.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE payments
      ADD COLUMN resolution text CHECK (resolution IN ('accept', 'refund')),
      ADD COLUMN refund_address text,
      ADD COLUMN resolved_at timestamptz;
    ALTER TABLE merchants
      ADD COLUMN underpaid_tolerance_percent numeric(5,2) NOT NULL DEFAULT 0,
      ADD COLUMN late_payment_window_seconds int NOT NULL DEFAULT 86400;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE payments DROP COLUMN resolution, DROP COLUMN refund_address, DROP COLUMN resolved_at;
    ALTER TABLE merchants DROP COLUMN underpaid_tolerance_percent, DROP COLUMN late_payment_window_seconds;
  `);
}
