import type { Knex } from 'knex';

// The hosted checkout page (GET /pay/:id). checkout_url is fixed when the payment is created, from the API's
// PUBLIC_URL, so workers (webhook payloads) never need to know where the API is reachable. success_url and
// cancel_url are where the page sends the customer back to the merchant.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE payments
      ADD COLUMN checkout_url text,
      ADD COLUMN success_url text CHECK (char_length(success_url) <= 2048),
      ADD COLUMN cancel_url text CHECK (char_length(cancel_url) <= 2048);
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE payments DROP COLUMN checkout_url, DROP COLUMN success_url, DROP COLUMN cancel_url`);
}
