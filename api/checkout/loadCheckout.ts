import type { ChainConfig } from '../../shared/config.js';
import type { Db } from '../../shared/db.js';
import { formatAmount } from '../../shared/money.js';
import { paymentUri } from '../../shared/payments/paymentUri.js';
import type { PaymentException, PaymentStatus } from '../../shared/payments/stateMachine.js';
import { checkoutState, type CheckoutState } from './checkoutState.js';

/** Everything the checkout page shows about one payment, and nothing more (no merchant id, order id or metadata). */
export interface CheckoutPayment {
  id: string;
  state: CheckoutState;
  status: PaymentStatus;
  exception: PaymentException | null;
  merchantName: string;
  chainId: number;
  chainName: string;
  currency: string;
  tokenAddress: string | null;
  amount: string;
  amountReceived: string;
  amountDue: string;
  /** Something arrived in time but less than the amount (minus tolerance): the customer still has to send the rest. */
  partiallyPaid: boolean;
  address: string;
  paymentUri: string;
  /** Confirmations of the newest counted transfer (the one furthest from final); 0 before anything arrived. */
  confirmations: number;
  /** 0 when the chain's finality is a node tag (`safe` / `finalized`) rather than a block count. */
  confirmationsRequired: number;
  expiresAt: Date;
  successUrl: string | null;
  cancelUrl: string | null;
}

/**
 * Ids are `pay_` + 24 base62 characters (22 for payments made before migration 20261127000000, still valid);
 * anything else is answered 404 without touching the database.
 */
export const PAYMENT_ID = /^pay_[0-9A-Za-z]{22}(?:[0-9A-Za-z]{2})?$/;

/** Reads one payment for its public checkout page, in a single query. Undefined when there is no such payment. */
export async function loadCheckoutPayment(db: Db, chains: ChainConfig[], paymentId: string): Promise<CheckoutPayment | undefined> {
  if (!PAYMENT_ID.test(paymentId)) return undefined;
  const { rows } = await db.raw(
    `SELECT p.id, p.status, p.exception, p.chain_id, p.currency, p.token_address, p.decimals, p.amount, p.amount_received,
            p.underpaid_tolerance, p.address, p.confirmations_required, p.expires_at, p.success_url, p.cancel_url,
            m.name AS merchant_name,
            (SELECT max(t.block_number) FROM transfers t
              WHERE t.payment_id = p.id AND t.counted AND t.orphaned_at IS NULL) AS newest_transfer_block,
            (SELECT c.next_block - 1 FROM chain_cursors c WHERE c.chain_id = p.chain_id) AS scanned_tip
       FROM payments p JOIN merchants m ON m.id = p.merchant_id
      WHERE p.id = ?`,
    [paymentId],
  );
  const row = rows[0];
  if (!row) return undefined;
  const amount = BigInt(row.amount);
  const received = BigInt(row.amount_received);
  const fmt = (units: bigint) => formatAmount(units, row.decimals);
  const chainId = Number(row.chain_id);
  const confirmations =
    row.newest_transfer_block != null && row.scanned_tip != null
      ? Math.max(0, Number(row.scanned_tip) - Number(row.newest_transfer_block) + 1)
      : 0;
  return {
    id: row.id,
    state: checkoutState(row.status, row.exception),
    status: row.status,
    exception: row.exception,
    merchantName: row.merchant_name,
    chainId,
    chainName: chains.find((c) => c.chainId === chainId)?.name ?? `chain ${chainId}`,
    currency: row.currency,
    tokenAddress: row.token_address,
    amount: fmt(amount),
    amountReceived: fmt(received),
    amountDue: fmt(amount > received ? amount - received : 0n),
    partiallyPaid: row.status === 'confirming' && received < amount - BigInt(row.underpaid_tolerance),
    address: row.address,
    paymentUri: paymentUri({ address: row.address, chainId, tokenAddress: row.token_address, amount }),
    confirmations,
    confirmationsRequired: row.confirmations_required,
    expiresAt: row.expires_at,
    successUrl: row.success_url,
    cancelUrl: row.cancel_url,
  };
}

/** The public status document polled by the page: only what the page shows. */
export function presentCheckoutStatus(p: CheckoutPayment) {
  return {
    state: p.state,
    status: p.status,
    exception: p.exception,
    amount: p.amount,
    amount_received: p.amountReceived,
    amount_due: p.amountDue,
    partially_paid: p.partiallyPaid,
    currency: p.currency,
    confirmations: p.confirmationsRequired > 0 ? Math.min(p.confirmations, p.confirmationsRequired) : p.confirmations,
    confirmations_required: p.confirmationsRequired,
    expires_at: p.expiresAt.toISOString(),
  };
}
