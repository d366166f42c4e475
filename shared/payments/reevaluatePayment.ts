import type { Db, Tx } from '../db.js';
import { recordEvent } from '../events/recordEvent.js';
import type { PaymentRow, TransferRow } from './paymentRow.js';
import { onPaymentConfirmed } from '../settlement/onPaymentConfirmed.js';
import { presentPayment } from './present.js';
import { decidePayment, type PaymentEventType } from './stateMachine.js';

/** What the scanner knows of a chain, in the transaction that re-evaluates payments on it. */
export interface ScannedChainState {
  /** Newest block the scanner has verified as canonical. */
  scannedTip: number;
  tipTimestamp: Date | null;
  /** For chains whose confirmations are a block tag (safe/finalized): that block's number. */
  taggedFinalBlock?: number;
}

/** Payments store 0 confirmations when the chain decides finality by a block tag. */
export function finalThrough(confirmationsRequired: number, chain: ScannedChainState): number {
  if (confirmationsRequired === 0) return Math.min(chain.taggedFinalBlock ?? -1, chain.scannedTip);
  return chain.scannedTip - confirmationsRequired + 1;
}

/**
 * Whether any counted, live transfer of the payment is newer than what its chain has made final: funds a reorg
 * could still take back. Without a cursor nothing is final yet.
 */
export async function hasUnfinalTransfers(trx: Db | Tx, payment: Pick<PaymentRow, 'id' | 'chain_id' | 'confirmations_required'>): Promise<boolean> {
  const cursor = await trx('chain_cursors').where({ chain_id: payment.chain_id }).first();
  const final = cursor
    ? finalThrough(payment.confirmations_required, { scannedTip: Number(cursor.next_block) - 1, tipTimestamp: cursor.tip_timestamp, taggedFinalBlock: cursor.final_block ?? undefined })
    : -1;
  const unfinal = await trx('transfers').where({ payment_id: payment.id, counted: true }).whereNull('orphaned_at').where('block_number', '>', final).first();
  return unfinal !== undefined;
}

/**
 * Locks a payment, re-decides its status from its live transfers and, when anything changed, applies the change
 * and records its events, all in the caller's transaction. Idempotent: calling it twice changes nothing the
 * second time, so any number of workers may call it.
 */
export async function reevaluatePayment(trx: Tx, paymentId: string, chain: ScannedChainState): Promise<PaymentEventType[]> {
  const payment: (PaymentRow & { late_payment_window_seconds: number }) | undefined = await trx('payments')
    .join('merchants', 'merchants.id', 'payments.merchant_id')
    .select('payments.*', 'merchants.late_payment_window_seconds')
    .where('payments.id', paymentId)
    // Not FOR UPDATE: a payment's id never changes, and FOR UPDATE would also hold up every insert that refers to
    // the payment (transfers, ledger entries: their foreign-key checks take FOR KEY SHARE) until commit.
    .forNoKeyUpdate('payments')
    .first();
  if (!payment) return [];
  const transfers: TransferRow[] = await trx('transfers')
    .where({ payment_id: paymentId, counted: true })
    .whereNull('orphaned_at');
  const decision = decidePayment(
    {
      status: payment.status,
      exception: payment.exception,
      amount: BigInt(payment.amount),
      underpaidTolerance: BigInt(payment.underpaid_tolerance),
      amountReceived: BigInt(payment.amount_received),
      expiresAt: payment.expires_at,
      lateWindowSeconds: payment.late_payment_window_seconds,
    },
    transfers.map((t) => ({ amount: BigInt(t.amount), blockNumber: Number(t.block_number), blockTimestamp: t.block_timestamp })),
    { finalThrough: finalThrough(payment.confirmations_required, chain), tipTimestamp: chain.tipTimestamp },
  );
  const unchanged =
    decision.status === payment.status &&
    decision.exception === payment.exception &&
    decision.amountReceived === BigInt(payment.amount_received);
  if (unchanged) return [];

  const [updated]: PaymentRow[] = await trx('payments')
    .where({ id: paymentId, status: payment.status })
    .update({
      status: decision.status,
      exception: decision.exception,
      amount_received: decision.amountReceived.toString(),
      confirmed_at: decision.status === 'confirmed' ? trx.fn.now() : payment.confirmed_at,
      updated_at: trx.fn.now(),
    })
    .returning('*');
  if (decision.status === 'confirmed' && payment.status !== 'confirmed') await onPaymentConfirmed(trx, updated);
  const data = presentPayment(updated);
  for (const type of decision.events) {
    await recordEvent(trx, { merchantId: payment.merchant_id, type, paymentId, data });
  }
  return decision.events;
}
