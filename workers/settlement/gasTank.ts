import { Wallet } from 'ethers';
import type { Db } from '../../shared/db.js';
import type { Logger } from '../../shared/logger.js';
import type { RpcClient } from '../../shared/chain/rpcClient.js';
import { feeData, nativeBalance, transactionCount } from './chainCalls.js';
import { gasTankFees } from './fees.js';
import type { SweepLock } from './locks.js';
import { broadcastStored, signAndStore, type SweepTxRow } from './sweepTransactions.js';

/**
 * The gas tank: an operator wallet (GAS_TANK_PRIVATE_KEY, the same key on every chain, with a balance and nonce
 * per chain) that sends a token deposit just enough native coin to pay for its token transfer.
 *
 * Nonces: under the chain's tank lock, the next nonce is max(highest stored tank nonce + 1, the node's pending
 * count), the transaction is stored and then broadcast before the lock is released, so tank transactions reach
 * the node in nonce order. Stored ones that a crash kept from being broadcast are broadcast first, in order.
 */
export class GasTankEmptyError extends Error {
  override name = 'GasTankEmptyError';
}

const FUNDING_GAS = 21_000n;
const lastLowWarning = new Map<number, number>();

export function gasTankWallet(privateKey: string | undefined): Wallet | null {
  return privateKey ? new Wallet(privateKey) : null;
}

/**
 * Observers of settlement, for metrics: workers/main.ts connects them to shared/metrics.ts
 * (payflow_gas_tank_balance{chain_id}, payflow_settlements_total{outcome,chain_id}).
 */
export interface SettlementObserver {
  gasTankBalance?(chainId: number, wei: bigint): void;
  settlement?(outcome: 'settled' | 'refunded' | 'failed' | 'skipped', chainId: number): void;
}

/** Reads the tank's balance, reports it to the metric, and warns (at most once a minute per chain) when low. */
export async function observeGasTank(
  rpc: RpcClient,
  chainId: number,
  tank: Wallet,
  lowWei: bigint,
  log: Logger,
  observer?: SettlementObserver,
): Promise<bigint> {
  const balance = await nativeBalance(rpc, tank.address);
  observer?.gasTankBalance?.(chainId, balance);
  if (balance < lowWei && Date.now() - (lastLowWarning.get(chainId) ?? 0) > 60_000) {
    lastLowWarning.set(chainId, Date.now());
    log.warn({ chainId, gasTank: tank.address, balanceWei: balance.toString(), lowWei: lowWei.toString() }, 'gas tank balance is low: token settlements wait until it is refilled');
  }
  return balance;
}

/**
 * Sends `amount` wei from the tank to a deposit, for one sweep. Throws GasTankEmptyError (nothing signed) when
 * the tank cannot pay; the settlement then waits and retries.
 */
export async function fundFromGasTank(opts: {
  db: Db;
  rpc: RpcClient;
  lock: SweepLock;
  chainId: number;
  tank: Wallet;
  sweepId: string;
  deposit: string;
  amount: bigint;
  lowWei: bigint;
  log: Logger;
  observer?: SettlementObserver;
}): Promise<SweepTxRow | null> {
  const { db, rpc, chainId, tank } = opts;
  return opts.lock.withGasTank(chainId, async () => {
    const stranded: SweepTxRow[] = await db('sweep_transactions')
      .where({ chain_id: chainId, from_address: tank.address })
      .whereNull('broadcast_at')
      .whereNull('mined_block')
      .orderBy([{ column: 'nonce' }, { column: 'attempt' }]);
    for (const row of stranded) await broadcastStored(db, rpc, row);

    const [{ max }] = await db('sweep_transactions').where({ chain_id: chainId, from_address: tank.address }).max({ max: 'nonce' });
    const pending = await transactionCount(rpc, tank.address, 'pending');
    const nonce = Math.max(max === null ? 0 : Number(max) + 1, pending);
    const { baseFee, tip } = await feeData(rpc);
    const fees = gasTankFees(baseFee, tip);
    const balance = await observeGasTank(rpc, chainId, tank, opts.lowWei, opts.log, opts.observer);
    if (balance < opts.amount + FUNDING_GAS * fees.maxFeePerGas) {
      throw new GasTankEmptyError(`gas tank ${tank.address} on chain ${chainId} holds ${balance} wei, needs ${opts.amount + FUNDING_GAS * fees.maxFeePerGas}`);
    }
    const row = await signAndStore(db, tank, {
      sweepId: opts.sweepId,
      chainId,
      role: 'gas_funding',
      to: opts.deposit,
      nonce,
      attempt: 0,
      value: opts.amount,
      gasLimit: FUNDING_GAS,
      fees,
    });
    if (row) await broadcastStored(db, rpc, row);
    return row;
  });
}
