import { formatAmount } from '../money.js';

/**
 * What payments.settlement / payments.refund hold (base units as decimal strings), written by the settlement
 * worker in the transaction that marks the payment settled or refunded.
 */
export interface SettlementRecord {
  /** The sweep transaction that mined; null for a non-custodial payment (the funds are already the merchant's). */
  tx_hash: string | null;
  /** Base units that reached `to`. */
  amount: string;
  /** Base units of the payment's asset spent on gas (native-coin sweeps; "0" for tokens, whose gas the tank pays). */
  fee: string;
  to: string;
  /** ISO time the sweep was recorded as final. */
  at: string;
}

/** The `settlement` (or `refund`) object of the API payment: amounts as decimal strings of the payment's asset. */
export function presentSettlement(record: SettlementRecord | null | undefined, decimals: number, timeField: 'settled_at' | 'refunded_at') {
  if (!record) return null;
  return {
    tx_hash: record.tx_hash,
    amount: formatAmount(BigInt(record.amount), decimals),
    fee: formatAmount(BigInt(record.fee), decimals),
    to: record.to,
    [timeField]: record.at,
  } as { tx_hash: string | null; amount: string; fee: string; to: string } & Record<typeof timeField, string>;
}
