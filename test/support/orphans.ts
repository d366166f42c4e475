import type { Db } from '../../shared/db.js';

/**
 * Rows whose parent is missing, for the references that have no foreign key (migration 20261127000001): what those
 * keys guarded, checked after the fact. Empty when the code keeps its promise.
 */
export async function findOrphans(db: Db): Promise<Record<string, string[]>> {
  const { rows } = await db.raw(`
    SELECT 'payments.merchant_id' AS ref, p.id FROM payments p WHERE NOT EXISTS (SELECT 1 FROM merchants m WHERE m.id = p.merchant_id)
    UNION ALL
    SELECT 'events.merchant_id', e.id FROM events e WHERE NOT EXISTS (SELECT 1 FROM merchants m WHERE m.id = e.merchant_id)
    UNION ALL
    SELECT 'events.payment_id', e.id FROM events e WHERE e.payment_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.id = e.payment_id)
    UNION ALL
    SELECT 'webhook_deliveries.event_id', d.id FROM webhook_deliveries d WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.id = d.event_id)
    UNION ALL
    SELECT 'webhook_deliveries.endpoint_id', d.id FROM webhook_deliveries d WHERE NOT EXISTS (SELECT 1 FROM webhook_endpoints w WHERE w.id = d.endpoint_id)
    LIMIT 20`);
  const found: Record<string, string[]> = {};
  for (const r of rows as { ref: string; id: string }[]) (found[r.ref] ??= []).push(r.id);
  return found;
}
