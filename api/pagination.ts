import type { Knex } from 'knex';
import { z } from 'zod';
import { invalidRequest } from '../shared/errors.js';
import { validate } from './validation.js';

export const listQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(100).default(10),
    starting_after: z.string().max(64).optional(),
    ending_before: z.string().max(64).optional(),
  })
  .loose();

/**
 * Cursor pagination over a table with a `seq` column, newest first: `starting_after` pages towards older
 * objects, `ending_before` towards newer ones. Cursors are object ids, resolved to their seq, so inserts that
 * happen while a client pages never shift or repeat items.
 */
export async function paginate<T extends { seq: number }>(
  query: Knex.QueryBuilder,
  table: string,
  scope: Record<string, unknown>,
  rawQuery: unknown,
): Promise<{ rows: T[]; hasMore: boolean }> {
  const q = validate(listQuery, rawQuery);
  if (q.starting_after && q.ending_before) throw invalidRequest('parameter_invalid', 'Give starting_after or ending_before, not both', 'ending_before');
  const cursorId = q.starting_after ?? q.ending_before;
  const builder = query.clone();
  if (cursorId) {
    const cursor = await query.client.queryBuilder().from(table).select('seq').where({ ...scope, id: cursorId }).first();
    if (!cursor) throw invalidRequest('parameter_invalid', `No such object: ${cursorId}`, q.starting_after ? 'starting_after' : 'ending_before');
    builder.where(`${table}.seq`, q.starting_after ? '<' : '>', cursor.seq);
  }
  builder.orderBy(`${table}.seq`, q.ending_before ? 'asc' : 'desc').limit(q.limit + 1);
  const rows = (await builder) as T[];
  const hasMore = rows.length > q.limit;
  const page = rows.slice(0, q.limit);
  if (q.ending_before) page.reverse();
  return { rows: page, hasMore };
}
