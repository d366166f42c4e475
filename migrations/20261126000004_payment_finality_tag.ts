import type { Knex } from 'knex';

// Chains whose finality is the node's `safe` / `finalized` block tag: the payment records which tag decides
// (confirmations_required is then 0), so the API can say so and the decision needs no chain config.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE payments ADD COLUMN finality_tag text CHECK (finality_tag IN ('safe', 'finalized'))`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE payments DROP COLUMN finality_tag`);
}
