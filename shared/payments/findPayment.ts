import type { Db } from '../db.js';
import { BATCHING, createBatcher } from '../batching.js';
import { queryPrepared } from '../preparedQuery.js';
import type { PaymentRow } from './paymentRow.js';
import type { PresentedTransferRow as LiveTransfer } from './present.js';

type Found = { payment: PaymentRow; transfers: LiveTransfer[]; scannedTip: number | null };
type FoundRow = PaymentRow & { cursor_next_block: number | string | null; live_transfers: LiveTransfer[] };

/**
 * Payments with their live (not orphaned) transfers and the tip their chain is scanned through, by id, in one
 * statement (prepared once per connection). GET /payments/:id is the hottest read: one statement instead of three
 * (bench: the API was CPU-bound on pg writes), and concurrent reads share it (batching.ts). Amounts travel as text
 * inside the JSON, because a numeric(78,0) as a JSON number would lose digits in JSON.parse.
 */
const FIND_PAYMENTS_SQL = `
  SELECT p.*,
         (SELECT c.next_block FROM chain_cursors c WHERE c.chain_id = p.chain_id) AS cursor_next_block,
         (SELECT coalesce(json_agg(json_build_object(
                   'tx_hash', t.tx_hash, 'log_index', t.log_index, 'from_address', t.from_address,
                   'amount', t.amount::text, 'token_address', t.token_address, 'counted', t.counted,
                   'block_number', t.block_number) ORDER BY t.id), '[]')
            FROM transfers t WHERE t.payment_id = p.id AND t.orphaned_at IS NULL) AS live_transfers
    FROM payments p
   WHERE p.id = ANY ($1::text[])`;

interface Lookup {
  merchantId: string;
  paymentId: string;
}

const lookups = new WeakMap<Db, (lookup: Lookup) => Promise<Found | undefined>>();

function lookupsOf(db: Db) {
  let lookup = lookups.get(db);
  if (!lookup) {
    lookup = createBatcher<Lookup, Found | undefined>(
      async (batch) => {
        const rows = await queryPrepared<FoundRow>(db, 'find_payments_with_transfers', FIND_PAYMENTS_SQL, [[...new Set(batch.map((l) => l.paymentId))]]);
        const byId = new Map(rows.map((r) => [r.id, r]));
        return batch.map(({ merchantId, paymentId }) => {
          const row = byId.get(paymentId);
          if (!row || row.merchant_id !== merchantId) return undefined; // another merchant's payment does not exist for this one
          const { cursor_next_block: next, live_transfers: transfers, ...payment } = row;
          return { payment, transfers, scannedTip: next == null ? null : Number(next) - 1 };
        });
      },
      BATCHING,
    );
    lookups.set(db, lookup);
  }
  return lookup;
}

/** A merchant's payment with its live transfers and its chain's scanned tip; undefined if the merchant has no such payment. */
export function findPaymentWithTransfers(db: Db, merchantId: string, paymentId: string): Promise<Found | undefined> {
  return lookupsOf(db)({ merchantId, paymentId });
}
