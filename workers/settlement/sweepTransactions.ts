import { Transaction, type BaseWallet } from 'ethers';
import type { Db } from '../../shared/db.js';
import type { RpcClient } from '../../shared/chain/rpcClient.js';
import { broadcast, receipt, type Receipt } from './chainCalls.js';
import { crashPoint } from '../../shared/crashPoint.js';
import type { Fees } from './fees.js';

/**
 * Signed transactions of sweeps: signed, then stored in Postgres, and only then broadcast. A retry after a crash
 * finds the stored bytes and broadcasts exactly those again; it never signs a different transaction for a nonce
 * that has one, except as an explicit replacement (the next `attempt`, same nonce, higher fee).
 */
export interface SweepTxRow {
  id: number;
  sweep_id: string;
  chain_id: number;
  role: 'sweep' | 'gas_funding';
  from_address: string;
  to_address: string;
  nonce: number;
  attempt: number;
  tx_hash: string;
  raw_tx: string;
  value: string;
  gas_limit: string;
  max_fee_per_gas: string;
  max_priority_fee_per_gas: string;
  broadcast_at: Date | null;
  mined_block: number | null;
  gas_used: string | null;
  effective_gas_price: string | null;
  receipt_status: number | null;
  created_at: Date;
}

export interface UnsignedSweepTx {
  sweepId: string;
  chainId: number;
  role: SweepTxRow['role'];
  to: string;
  nonce: number;
  attempt: number;
  value: bigint;
  gasLimit: bigint;
  fees: Fees;
  data?: string;
}

/** Signs and stores a transaction; null when another worker already stored one for this nonce and attempt. */
export async function signAndStore(db: Db, signer: BaseWallet, tx: UnsignedSweepTx): Promise<SweepTxRow | null> {
  const raw = await signer.signTransaction({
    type: 2,
    chainId: tx.chainId,
    nonce: tx.nonce,
    to: tx.to,
    value: tx.value,
    gasLimit: tx.gasLimit,
    maxFeePerGas: tx.fees.maxFeePerGas,
    maxPriorityFeePerGas: tx.fees.maxPriorityFeePerGas,
    data: tx.data ?? '0x',
  });
  crashPoint('after_sign');
  const rows: SweepTxRow[] = await db('sweep_transactions')
    .insert({
      sweep_id: tx.sweepId,
      chain_id: tx.chainId,
      role: tx.role,
      from_address: signer.address,
      to_address: tx.to,
      nonce: tx.nonce,
      attempt: tx.attempt,
      tx_hash: Transaction.from(raw).hash!,
      raw_tx: raw,
      value: tx.value.toString(),
      gas_limit: tx.gasLimit.toString(),
      max_fee_per_gas: tx.fees.maxFeePerGas.toString(),
      max_priority_fee_per_gas: tx.fees.maxPriorityFeePerGas.toString(),
    })
    .onConflict(['chain_id', 'from_address', 'nonce', 'attempt'])
    .ignore()
    .returning('*');
  if (rows.length === 0) return null;
  crashPoint('after_store');
  return rows[0];
}

/** Broadcasts the stored bytes (again, if need be) and notes when. */
export async function broadcastStored(db: Db, rpc: RpcClient, row: SweepTxRow): Promise<void> {
  await broadcast(rpc, row.raw_tx);
  crashPoint('after_broadcast');
  if (!row.broadcast_at) {
    await db('sweep_transactions').where({ id: row.id }).update({ broadcast_at: db.fn.now() });
    row.broadcast_at = new Date();
  }
}

/** Looks up a stored transaction's receipt and records it once it exists. */
export async function refreshReceipt(db: Db, rpc: RpcClient, row: SweepTxRow): Promise<Receipt | null> {
  const r = await receipt(rpc, row.tx_hash);
  if (r && (row.mined_block !== r.blockNumber || row.receipt_status !== r.status)) {
    await db('sweep_transactions')
      .where({ id: row.id })
      .update({ mined_block: r.blockNumber, gas_used: r.gasUsed.toString(), effective_gas_price: r.effectiveGasPrice.toString(), receipt_status: r.status });
    Object.assign(row, { mined_block: r.blockNumber, gas_used: r.gasUsed.toString(), effective_gas_price: r.effectiveGasPrice.toString(), receipt_status: r.status });
  }
  return r;
}

export const feesOf = (row: SweepTxRow): Fees => ({
  maxFeePerGas: BigInt(row.max_fee_per_gas),
  maxPriorityFeePerGas: BigInt(row.max_priority_fee_per_gas),
});
