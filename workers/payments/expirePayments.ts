import type { Db } from '../../shared/db.js';
import { reevaluatePayment } from '../../shared/payments/reevaluatePayment.js';

/**
 * Expiry sweep: re-decides open payments once the chain's own clock (the newest scanned block's timestamp) has
 * passed their expires_at. Waiting for the chain means a scanner that lags behind cannot
 * expire a payment whose transfer was mined in time. Payments paid in full and waiting for confirmations are left
 * alone: they were paid in time.
 */
export async function expireDuePayments(db: Db, batch = 200): Promise<number> {
  const due: { id: string }[] = await db('payments as p')
    .join('chain_cursors as c', 'c.chain_id', 'p.chain_id')
    .select('p.id')
    .whereIn('p.status', ['pending', 'confirming'])
    .whereRaw('p.expires_at < c.tip_timestamp')
    .whereRaw('p.amount_received < p.amount - p.underpaid_tolerance')
    .orderBy('p.expires_at')
    .limit(batch);
  let changed = 0;
  for (const { id } of due) {
    await db.transaction(async (trx) => {
      const locked = await trx('payments').where({ id }).forUpdate().skipLocked().first();
      if (!locked) return; // the scanner holds it; it will decide
      const cursor = await trx('chain_cursors').where({ chain_id: locked.chain_id }).first();
      const events = await reevaluatePayment(trx, id, {
        scannedTip: Number(cursor.next_block) - 1,
        tipTimestamp: cursor.tip_timestamp,
      });
      if (events.length > 0) changed++;
    });
  }
  return changed;
}
