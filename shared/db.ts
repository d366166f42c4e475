import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
import { migrationSource } from './migrationSource.js';

// int8 columns here are sequence numbers and block numbers: all far below 2^53, so a JS number is exact.
// Money never uses int8: it is numeric(78,0), left as a string by pg and turned into bigint by row mappers.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

export type Db = Knex;
export type Tx = Knex.Transaction;

export function createDb(databaseUrl: string, poolMax: number, applicationName = 'payflow'): Db {
  return knexFactory({
    client: 'pg',
    connection: { connectionString: databaseUrl, application_name: applicationName },
    pool: { min: 0, max: poolMax },
    acquireConnectionTimeout: 10_000,
  });
}

export const MIGRATIONS_DIR = new URL('../migrations', import.meta.url).pathname;

export const migrationConfig: Knex.MigratorConfig = {
  // Not `directory`: the source also reads the compiled migrations in dist/ under their recorded `.ts` names.
  migrationSource: migrationSource(MIGRATIONS_DIR),
  tableName: 'knex_migrations',
};

/** Brings the schema up to date; safe to run from several processes at once (knex takes a lock). */
export async function migrateLatest(db: Db): Promise<string[]> {
  const [, applied] = await db.migrate.latest(migrationConfig);
  return applied as string[];
}

/** True when every migration file has been applied (used by /ready). */
export async function migrationsCurrent(db: Db): Promise<boolean> {
  const [, pending] = (await db.migrate.list(migrationConfig)) as [unknown[], unknown[]];
  return pending.length === 0;
}
