import { formatAmount } from '../money.js';
import { presentSettlement } from '../settlement/presentSettlement.js';
import { paymentUri } from './paymentUri.js';
import type { PaymentRow, TransferRow } from './paymentRow.js';

/** The transfer columns the payment object shows. */
export type PresentedTransferRow = Pick<TransferRow, 'tx_hash' | 'log_index' | 'from_address' | 'amount' | 'token_address' | 'counted' | 'block_number'>;

/** The payment object of the public API (and of webhook `data`). Amounts are decimal strings in the asset's units. */
export function presentPayment(row: PaymentRow, extra?: { transfers?: PresentedTransferRow[]; scannedTip?: number | null }) {
  const amount = BigInt(row.amount);
  const received = BigInt(row.amount_received);
  const due = amount > received ? amount - received : 0n;
  const fmt = (units: bigint) => formatAmount(units, row.decimals);
  return {
    id: row.id,
    object: 'payment' as const,
    status: row.status,
    exception: row.exception,
    amount: fmt(amount),
    amount_received: fmt(received),
    amount_due: fmt(due),
    underpaid_tolerance: fmt(BigInt(row.underpaid_tolerance)),
    resolution: row.resolution ?? null,
    currency: row.currency,
    chain_id: Number(row.chain_id),
    token_address: row.token_address,
    address: row.address,
    // A number of blocks, or the node's block tag ("safe" / "finalized") that decides finality on this chain.
    confirmations_required: row.finality_tag ?? row.confirmations_required,
    order_id: row.order_id,
    metadata: row.metadata,
    checkout_url: row.checkout_url ?? null,
    success_url: row.success_url ?? null,
    cancel_url: row.cancel_url ?? null,
    payment_uri: paymentUri({ address: row.address, chainId: Number(row.chain_id), tokenAddress: row.token_address, amount }),
    expires_at: row.expires_at.toISOString(),
    confirmed_at: row.confirmed_at ? row.confirmed_at.toISOString() : null,
    custody: row.custody ?? 'custodial',
    settlement: presentSettlement(row.settlement, row.decimals, 'settled_at'),
    refund: presentSettlement(row.refund, row.decimals, 'refunded_at'),
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
    ...(extra?.transfers
      ? {
          transfers: extra.transfers.map((t) => ({
            tx_hash: t.tx_hash,
            log_index: t.log_index < 0 ? null : t.log_index,
            from: t.from_address,
            amount: formatAmount(BigInt(t.amount), t.counted ? row.decimals : 0),
            asset: t.token_address ?? 'native',
            counted: t.counted,
            block_number: Number(t.block_number),
            confirmations:
              extra.scannedTip != null ? Math.max(0, extra.scannedTip - Number(t.block_number) + 1) : 0,
          })),
        }
      : {}),
  };
}

export type PaymentObject = ReturnType<typeof presentPayment>;
