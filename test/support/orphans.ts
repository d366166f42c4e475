import type { Db } from '../../shared/db.js';

/** The references that have no foreign key (migration 20261127000001): child table, its column, parent table. */
const REFERENCES = [
  ['payments', 'merchant_id', 'merchants'],
  ['events', 'merchant_id', 'merchants'],
  ['events', 'payment_id', 'payments'],
  ['webhook_deliveries', 'event_id', 'events'],
  ['webhook_deliveries', 'endpoint_id', 'webhook_endpoints'],
] as const;

/**
 * Rows whose parent is missing, by reference (`events.payment_id`, …): what those keys guarded, checked after the
 * fact. Empty when the code keeps its promise.
 */
export async function findOrphans(db: Db): Promise<Record<string, string[]>> {
  const { rows } = await db.raw(
    `${REFERENCES.map(
      ([child, column, parent]) =>
        `SELECT '${child}.${column}' AS ref, c.id FROM ${child} c WHERE c.${column} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ${parent} p WHERE p.id = c.${column})`,
    ).join('\nUNION ALL\n')}
    LIMIT 20`,
  );
  const found: Record<string, string[]> = {};
  for (const r of rows as { ref: string; id: string }[]) (found[r.ref] ??= []).push(r.id);
  return found;
}
