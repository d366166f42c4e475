import type { Tx } from '../../shared/db.js';
import { recordEvent } from '../../shared/events/recordEvent.js';
import { appendLedgerEntries, sumPaymentEntries, type LedgerEntryInput } from '../../shared/ledger/ledgerEntries.js';
import type { PaymentRow } from '../../shared/payments/paymentRow.js';
import { presentPayment } from '../../shared/payments/present.js';
import { assertTransition } from '../../shared/payments/stateMachine.js';
import { depositReceivedEntry } from '../../shared/settlement/onPaymentConfirmed.js';
import type { SettlementRecord } from '../../shared/settlement/presentSettlement.js';
import type { SweepRow } from './sweepRow.js';

/**
 * The one transaction that records a finished settlement: the payment's new status (settled, or refunded) with
 * its settlement/refund object, the ledger entries, the sweep's outcome and the event. Conditional on the payment
 * still being in the status it left from, so running it twice changes nothing.
 */
export async function finalizeSettlement(
  trx: Tx,
  opts: {
    paymentId: string;
    purpose: 'settlement' | 'refund';
    /** Base units of the payment's asset that reached `to`. */
    amount: bigint;
    /** Base units of the payment's asset paid as gas out of the deposit (native sweeps), else 0. */
    fee: bigint;
    to: string;
    txHash: string | null;
    sweep?: SweepRow;
    /** Wei of gas the sweep cost in total (paid by the deposit or the gas tank). */
    networkFee?: bigint;
  },
): Promise<boolean> {
  const payment: PaymentRow | undefined = await trx('payments').where({ id: opts.paymentId }).forNoKeyUpdate().first();
  if (!payment) return false;
  const from = opts.purpose === 'settlement' ? 'confirmed' : 'expired';
  const to = opts.purpose === 'settlement' ? 'settled' : 'refunded';
  if (payment.status !== from) return false;
  assertTransition(from, to);

  // What left the deposit beyond the credit at confirmation (funds that arrived later, or a refund of a payment
  // that was never credited) is credited now. Less than the credit stays pending: it is still in the deposit.
  const gross = opts.amount + opts.fee;
  const credited = await sumPaymentEntries(trx, payment.id, ['deposit_received']);
  const asset = {
    merchantId: payment.merchant_id,
    chainId: Number(payment.chain_id),
    currency: payment.currency,
    tokenAddress: payment.token_address,
    decimals: payment.decimals,
    paymentId: payment.id,
    sweepId: opts.sweep?.id,
    txHash: opts.txHash,
  };
  const entryKey = opts.sweep?.id ?? payment.id;
  const entries: LedgerEntryInput[] = [
    credited === 0n
      ? { ...depositReceivedEntry(payment, gross) }
      : { ...depositReceivedEntry(payment, gross > credited ? gross - credited : 0n), key: `${payment.id}:deposit_received:swept` },
    { ...asset, key: `${entryKey}:network_fee`, type: 'network_fee', amount: -opts.fee },
    { ...asset, key: `${entryKey}:${opts.purpose === 'settlement' ? 'settlement_out' : 'refund_out'}`, type: opts.purpose === 'settlement' ? 'settlement_out' : 'refund_out', amount: -opts.amount },
  ];
  await appendLedgerEntries(trx, entries);

  const record: SettlementRecord = { tx_hash: opts.txHash, amount: opts.amount.toString(), fee: opts.fee.toString(), to: opts.to, at: new Date().toISOString() };
  const [updated]: PaymentRow[] = await trx('payments')
    .where({ id: payment.id, status: from })
    .update({ status: to, [opts.purpose === 'settlement' ? 'settlement' : 'refund']: JSON.stringify(record), updated_at: trx.fn.now() })
    .returning('*');
  if (opts.sweep) {
    await trx('sweeps').where({ id: opts.sweep.id }).update({
      status: 'confirmed',
      tx_hash: opts.txHash,
      amount: opts.amount.toString(),
      fee: opts.fee.toString(),
      network_fee: (opts.networkFee ?? 0n).toString(),
      confirmed_at: trx.fn.now(),
      updated_at: trx.fn.now(),
      last_error: null,
    });
  }
  await recordEvent(trx, { merchantId: payment.merchant_id, type: `payment.${to}`, paymentId: payment.id, data: presentPayment(updated) });
  return true;
}
