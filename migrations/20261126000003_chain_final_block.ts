import type { Knex } from 'knex';

// For chains whose finality is the node's `safe`/`finalized` tag, the scanner records that block's number so the
// API (which never calls the chain) can tell whether a transfer is final.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE chain_cursors ADD COLUMN final_block bigint`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE chain_cursors DROP COLUMN final_block`);
}
