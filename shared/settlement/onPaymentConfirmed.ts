import type { Tx } from '../db.js';
import { appendLedgerEntries } from '../ledger/ledgerEntries.js';
import { enqueueInTx } from '../outbox/enqueue.js';
import type { PaymentRow } from '../payments/paymentRow.js';
import { QUEUES } from '../queues/names.js';

/** The ledger credit for a payment's counted funds, keyed so it is written once per payment. */
export function depositReceivedEntry(payment: PaymentRow, amount = BigInt(payment.amount_received)) {
  return {
    key: `${payment.id}:deposit_received`,
    merchantId: payment.merchant_id,
    chainId: Number(payment.chain_id),
    currency: payment.currency,
    tokenAddress: payment.token_address,
    decimals: payment.decimals,
    type: 'deposit_received' as const,
    amount,
    paymentId: payment.id,
  };
}

/**
 * Called in the transaction that makes a payment `confirmed` (by the chain, or by the merchant accepting a late
 * payment): credits the ledger and queues its settlement, both committing with the status change. The settlement
 * reconciler finds any confirmed payment this missed, so the job is a shortcut, not the only path.
 */
export async function onPaymentConfirmed(trx: Tx, payment: PaymentRow): Promise<void> {
  await appendLedgerEntries(trx, [depositReceivedEntry(payment)]);
  await enqueueInTx(trx, [{ queue: QUEUES.settlement, name: 'settle', jobId: `settle-${payment.id}`, payload: { paymentId: payment.id } }]);
}
