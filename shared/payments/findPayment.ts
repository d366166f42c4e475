import type { Db } from '../db.js';
import { queryPrepared } from '../preparedQuery.js';
import type { PaymentRow } from './paymentRow.js';
import type { PresentedTransferRow as LiveTransfer } from './present.js';

/**
 * A merchant's payment with its live (not orphaned) transfers and the tip its chain is scanned through, in one
 * statement (prepared once per connection): GET /payments/:id is the hottest read, and three round trips cost three times the Postgres and
 * socket work of one (bench: the API was CPU-bound on pg writes). Amounts travel as text inside the JSON, because
 * a numeric(78,0) as a JSON number would lose digits in JSON.parse.
 */
export async function findPaymentWithTransfers(
  db: Db,
  merchantId: string,
  paymentId: string,
): Promise<{ payment: PaymentRow; transfers: LiveTransfer[]; scannedTip: number | null } | undefined> {
  const rows = await queryPrepared<PaymentRow & { cursor_next_block: number | string | null; live_transfers: LiveTransfer[] }>(
    db,
    'find_payment_with_transfers',
    `SELECT p.*,
            (SELECT c.next_block FROM chain_cursors c WHERE c.chain_id = p.chain_id) AS cursor_next_block,
            (SELECT coalesce(json_agg(json_build_object(
                      'tx_hash', t.tx_hash, 'log_index', t.log_index, 'from_address', t.from_address,
                      'amount', t.amount::text, 'token_address', t.token_address, 'counted', t.counted,
                      'block_number', t.block_number) ORDER BY t.id), '[]')
               FROM transfers t WHERE t.payment_id = p.id AND t.orphaned_at IS NULL) AS live_transfers
       FROM payments p
      WHERE p.id = $1 AND p.merchant_id = $2`,
    [paymentId, merchantId],
  );
  const row = rows[0];
  if (!row) return undefined;
  const { cursor_next_block: next, live_transfers: transfers, ...payment } = row;
  return { payment, transfers, scannedTip: next == null ? null : Number(next) - 1 };
}
