import type { Db, Tx } from '../db.js';
import { newId } from '../ids.js';
import { formatAmount } from '../money.js';

/**
 * The merchant ledger: an append-only list of money movements per merchant and asset, in signed base units.
 * The sum of a merchant's entries for an asset is what PayFlow holds for them on-chain (in deposit addresses):
 *
 *   deposit_received  +  a payment's funds counted at confirmation (and any difference found when it is swept)
 *   network_fee       −  gas paid out of the deposit itself (native-coin sweeps only; token gas comes from the tank)
 *   settlement_out    −  sent to the merchant's settlement address (or, non-custodial, already in their wallet)
 *   refund_out        −  sent back to the payer
 *
 * Entries are written in the same transaction as the state change they describe; `entry_key` makes writing one
 * twice (a retried job) a no-op, and a trigger refuses UPDATE and DELETE.
 */
export const LEDGER_ENTRY_TYPES = ['deposit_received', 'network_fee', 'settlement_out', 'refund_out'] as const;
export type LedgerEntryType = (typeof LEDGER_ENTRY_TYPES)[number];

export interface LedgerEntryInput {
  /** Idempotency key, e.g. `pay_…:deposit_received`. */
  key: string;
  merchantId: string;
  chainId: number;
  currency: string;
  tokenAddress: string | null;
  decimals: number;
  type: LedgerEntryType;
  /** Signed base units. */
  amount: bigint;
  paymentId?: string;
  sweepId?: string;
  txHash?: string | null;
}

export interface LedgerEntryRow {
  seq: number;
  id: string;
  entry_key: string;
  merchant_id: string;
  chain_id: number;
  currency: string;
  token_address: string | null;
  decimals: number;
  type: LedgerEntryType;
  amount: string;
  payment_id: string | null;
  sweep_id: string | null;
  tx_hash: string | null;
  created_at: Date;
}

/** Appends entries in the caller's transaction; an entry whose key exists already is skipped. Zero amounts are not written. */
export async function appendLedgerEntries(trx: Tx, entries: LedgerEntryInput[]): Promise<number> {
  const rows = entries
    .filter((e) => e.amount !== 0n)
    .map((e) => ({
      id: newId('led'),
      entry_key: e.key,
      merchant_id: e.merchantId,
      chain_id: e.chainId,
      currency: e.currency,
      token_address: e.tokenAddress,
      decimals: e.decimals,
      type: e.type,
      amount: e.amount.toString(),
      payment_id: e.paymentId ?? null,
      sweep_id: e.sweepId ?? null,
      tx_hash: e.txHash ?? null,
    }));
  if (rows.length === 0) return 0;
  const inserted = await trx('ledger_entries').insert(rows).onConflict('entry_key').ignore().returning('id');
  return inserted.length;
}

/** Sum of a payment's entries of some types, in base units. */
export async function sumPaymentEntries(trx: Tx | Db, paymentId: string, types: LedgerEntryType[]): Promise<bigint> {
  const [row] = await trx('ledger_entries').where({ payment_id: paymentId }).whereIn('type', types).sum({ total: 'amount' });
  return BigInt(row?.total ?? 0);
}

export function presentLedgerEntry(row: LedgerEntryRow) {
  return {
    id: row.id,
    object: 'ledger_entry' as const,
    type: row.type,
    amount: formatAmount(BigInt(row.amount), row.decimals),
    currency: row.currency,
    chain_id: Number(row.chain_id),
    token_address: row.token_address,
    payment_id: row.payment_id,
    tx_hash: row.tx_hash,
    created_at: row.created_at.toISOString(),
  };
}

/**
 * Balances per asset, from the ledger alone: `pending` is what PayFlow holds for the merchant (received, not yet
 * settled or refunded); the other fields are totals since the start, as positive amounts.
 */
export async function merchantBalances(db: Db, merchantId: string) {
  type SumRow = { chain_id: number; currency: string; token_address: string | null; decimals: number; type: LedgerEntryType; total: string };
  const rows = (await db('ledger_entries')
      .select('chain_id', 'currency', 'token_address', 'decimals', 'type')
      .sum({ total: 'amount' })
      .where({ merchant_id: merchantId })
      .groupBy('chain_id', 'currency', 'token_address', 'decimals', 'type')
      .orderBy(['chain_id', 'currency'])) as unknown as SumRow[];
  const byAsset = new Map<string, { chainId: number; currency: string; tokenAddress: string | null; decimals: number; totals: Record<LedgerEntryType, bigint> }>();
  for (const r of rows) {
    const key = `${r.chain_id}:${r.currency}`;
    let asset = byAsset.get(key);
    if (!asset) {
      asset = {
        chainId: Number(r.chain_id),
        currency: r.currency,
        tokenAddress: r.token_address,
        decimals: r.decimals,
        totals: { deposit_received: 0n, network_fee: 0n, settlement_out: 0n, refund_out: 0n },
      };
      byAsset.set(key, asset);
    }
    asset.totals[r.type] += BigInt(r.total);
  }
  return [...byAsset.values()].map((a) => {
    const fmt = (v: bigint) => formatAmount(v, a.decimals);
    const pending = Object.values(a.totals).reduce((s, v) => s + v, 0n);
    return {
      chain_id: a.chainId,
      currency: a.currency,
      token_address: a.tokenAddress,
      pending: fmt(pending),
      received: fmt(a.totals.deposit_received),
      network_fees: fmt(-a.totals.network_fee),
      settled: fmt(-a.totals.settlement_out),
      refunded: fmt(-a.totals.refund_out),
    };
  });
}
