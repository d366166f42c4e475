import type pg from 'pg';
import type { Db } from './db.js';

/**
 * Runs one statement as a named prepared statement on a connection of knex's pool. Postgres parses and plans a
 * named statement once per connection instead of on every call, and the query skips knex's builder and
 * compiler; the hottest statements (reading and creating payments) use this. `name` must be unique per SQL text.
 */
export async function queryPrepared<R>(db: Db, name: string, text: string, values: unknown[]): Promise<R[]> {
  const client = db.client as { acquireConnection(): Promise<pg.Client>; releaseConnection(c: pg.Client): Promise<void> };
  const connection = await client.acquireConnection();
  try {
    const result = await connection.query<R & pg.QueryResultRow>({ name, text, values });
    return result.rows;
  } finally {
    await client.releaseConnection(connection);
  }
}
