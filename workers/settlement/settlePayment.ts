import { Transaction, type Wallet } from 'ethers';
import type { Config, ChainConfig } from '../../shared/config.js';
import type { Db } from '../../shared/db.js';
import { newId } from '../../shared/ids.js';
import type { Logger } from '../../shared/logger.js';
import type { RpcClient } from '../../shared/chain/rpcClient.js';
import type { PaymentRow, TransferRow } from '../../shared/payments/paymentRow.js';
import type { DepositWallet } from '../../shared/wallet/hdWallet.js';
import { hasUnfinalTransfers } from '../../shared/payments/reevaluatePayment.js';
import { ERC20, estimateGas, feeData, headNumber, nativeBalance, tokenBalance, transactionCount } from './chainCalls.js';
import { crashPoint } from '../../shared/crashPoint.js';
import { bumpedFees, depositSweepFees, nativeSweepValue } from './fees.js';
import { finalizeSettlement } from './finalizeSettlement.js';
import { fundFromGasTank, GasTankEmptyError, type SettlementObserver } from './gasTank.js';
import { withSweepLock, type SweepLock } from './locks.js';
import type { SweepRow } from './sweepRow.js';
import { broadcastStored, feesOf, refreshReceipt, signAndStore, type SweepTxRow } from './sweepTransactions.js';

/**
 * Settlement: moves a payment's deposit to where it belongs, exactly once.
 *
 *   confirmed, custodial      → sweep to the merchant's settlement_address → settled   (payment.settled)
 *   confirmed, non-custodial  → nothing to move (the merchant holds the key) → settled (payment.settled)
 *   expired + resolution refund, custodial → sweep back to refund_address or the first payer → refunded (payment.refunded)
 *
 * A sweep advances in steps; each step reads what Postgres and the chain say, does one thing, and commits it:
 *   1. create the sweeps row (one per payment: UNIQUE payment_id);
 *   2. tokens only: the gas tank sends the deposit just enough native coin for the token transfer, and we wait
 *      until that is mined;
 *   3. sign the sweep transaction and STORE it (nonce, hash, raw bytes) before anything is broadcast;
 *   4. broadcast the stored bytes; a retry broadcasts the same bytes again (nodes answer "known" or "nonce too low");
 *   5. not mined after SETTLEMENT_REPLACE_AFTER_SECONDS: sign a replacement (same nonce, ≥ 12.5 % higher fees),
 *      store it as the next attempt, broadcast it; only one transaction of a nonce can ever mine, and the receipts
 *      of every attempt are checked, so whichever mines is the settlement;
 *   6. mined with the chain's confirmations: one transaction records the outcome (finalizeSettlement).
 * Every step runs under the payment's advisory lock (workers/settlement/locks.ts); a crash between any two steps
 * leaves state that the next step, in any worker, continues from.
 */
export interface SettlementDeps {
  db: Db;
  config: Config;
  log: Logger;
  wallet: DepositWallet;
  gasTank: Wallet | null;
  rpcFor(chainId: number): RpcClient | undefined;
  observer?: SettlementObserver;
}

export type SettleOutcome = 'done' | 'waiting' | 'busy' | 'nothing';
type StepOutcome = SettleOutcome | 'progress';

const MAX_STEPS = 10;

/** Advances one payment's settlement as far as it can go now. Idempotent; safe in any number of workers. */
export async function settlePayment(deps: SettlementDeps, paymentId: string): Promise<SettleOutcome> {
  // Each settlement holds a pooled connection for its locks and needs another for its writes: bounding them per
  // process (jobs and the reconciler together) leaves the pool room for the scanner and the outbox relay.
  return inSlot(deps, () =>
    withSweepLock(deps.db, paymentId, async (lock) => {
      for (let i = 0; i < MAX_STEPS; i++) {
        const step = await settlementStep(deps, paymentId, lock);
        if (step !== 'progress') return step;
      }
      return 'waiting' as const;
    }),
  );
}

const slots = new WeakMap<SettlementDeps, { free: number; queue: (() => void)[] }>();

async function inSlot<T>(deps: SettlementDeps, fn: () => Promise<T>): Promise<T> {
  let s = slots.get(deps);
  if (!s) slots.set(deps, (s = { free: deps.config.settlementConcurrency, queue: [] }));
  const slot = s;
  if (slot.free > 0) slot.free--;
  else await new Promise<void>((resolve) => slot.queue.push(resolve));
  try {
    return await fn();
  } finally {
    const next = slot.queue.shift();
    if (next) next();
    else slot.free++;
  }
}

async function settlementStep(deps: SettlementDeps, paymentId: string, lock: SweepLock): Promise<StepOutcome> {
  const { db, log } = deps;
  const payment: (PaymentRow & { settlement_address: string | null }) | undefined = await db('payments as p')
    .join('merchants as m', 'm.id', 'p.merchant_id')
    .select('p.*', 'm.settlement_address')
    .where('p.id', paymentId)
    .first();
  if (!payment) return 'nothing';
  const chain = deps.config.chains.find((c) => c.chainId === Number(payment.chain_id));
  const rpc = deps.rpcFor(Number(payment.chain_id));
  if (!chain || !rpc) return 'nothing';

  const sweep: SweepRow | undefined = await db('sweeps').where({ payment_id: paymentId }).first();
  if (!sweep) return startSettlement(deps, payment, chain);
  if (sweep.status !== 'pending') return 'done';

  const txs: SweepTxRow[] = await db('sweep_transactions').where({ sweep_id: sweep.id }).orderBy('id');
  const sweepTxs = txs.filter((t) => t.role === 'sweep');

  // 6. Has any attempt mined? Only one can: they share a nonce.
  for (const tx of sweepTxs) {
    const r = await refreshReceipt(db, rpc, tx);
    if (!r) continue;
    if (r.status !== 1) {
      await db('sweeps').where({ id: sweep.id }).update({ status: 'failed', tx_hash: tx.tx_hash, last_error: 'sweep transaction reverted', updated_at: db.fn.now() });
      deps.observer?.settlement?.('failed', chain.chainId);
      log.error({ paymentId, sweepId: sweep.id, txHash: tx.tx_hash }, 'sweep transaction reverted; the deposit needs an operator');
      return 'done';
    }
    if (!(await hasConfirmations(rpc, chain, r.blockNumber))) return 'waiting';
    // The gas-tank transfers that paid for it are mined too: note their receipts for the record.
    for (const funding of txs.filter((t) => t.role === 'gas_funding' && t.mined_block === null)) await refreshReceipt(db, rpc, funding);
    crashPoint('before_receipt');
    const networkFee = r.gasUsed * r.effectiveGasPrice;
    const native = sweep.token_address === null;
    const finalized = await db.transaction((trx) =>
      finalizeSettlement(trx, {
        paymentId,
        purpose: sweep.purpose,
        amount: native ? BigInt(tx.value) : tokenAmountOf(tx),
        fee: native ? networkFee : 0n,
        to: sweep.to_address,
        txHash: tx.tx_hash,
        sweep,
        networkFee,
      }),
    );
    if (finalized) {
      deps.observer?.settlement?.(sweep.purpose === 'settlement' ? 'settled' : 'refunded', chain.chainId);
      log.info({ paymentId, sweepId: sweep.id, txHash: tx.tx_hash, purpose: sweep.purpose }, 'sweep final');
    }
    return 'done';
  }

  const latest = sweepTxs[sweepTxs.length - 1];
  if (!latest) return signFirstSweep(deps, payment, chain, rpc, sweep, lock, txs);

  // 4. Broadcast what is stored (again after a crash or a dropped transaction: same bytes, harmless).
  if (!latest.broadcast_at) {
    await broadcastStored(db, rpc, latest);
    return 'progress';
  }
  const ageSeconds = (Date.now() - new Date(latest.broadcast_at).getTime()) / 1000;
  if (ageSeconds < deps.config.settlementReplaceAfterSeconds) {
    await broadcastStored(db, rpc, latest);
    return 'waiting';
  }
  return replaceSweep(deps, payment, chain, rpc, sweep, latest, lock, txs);
}

async function hasConfirmations(rpc: RpcClient, chain: ChainConfig, minedBlock: number): Promise<boolean> {
  if (typeof chain.confirmations === 'string') return (await headNumber(rpc, chain.confirmations)) >= minedBlock;
  return (await headNumber(rpc)) - minedBlock + 1 >= chain.confirmations;
}

/** 1. Decides whether and where this payment's funds go, and records the decision (or settles a non-custodial payment). */
async function startSettlement(deps: SettlementDeps, payment: PaymentRow & { settlement_address: string | null }, chain: ChainConfig): Promise<StepOutcome> {
  const { db, log } = deps;
  const custodial = (payment.custody ?? 'custodial') === 'custodial';
  if (payment.status === 'confirmed' && !custodial) {
    // The funds reached the merchant's own wallet when the payment was made: nothing to move, nothing to sign.
    const done = await db.transaction((trx) =>
      finalizeSettlement(trx, { paymentId: payment.id, purpose: 'settlement', amount: BigInt(payment.amount_received), fee: 0n, to: payment.address, txHash: null }),
    );
    if (done) deps.observer?.settlement?.('settled', chain.chainId);
    return 'done';
  }
  let purpose: SweepRow['purpose'];
  let to: string | null;
  if (payment.status === 'confirmed') {
    purpose = 'settlement';
    to = payment.settlement_address;
    if (!to) return 'waiting'; // settles once the merchant sets a settlement_address
  } else if (payment.status === 'expired' && payment.resolution === 'refund' && custodial) {
    purpose = 'refund';
    // Refund only funds that a reorg can no longer take back: the refund would otherwise pay out of thin air.
    if (await hasUnfinalTransfers(db, payment)) return 'waiting';
    const first: TransferRow | undefined = await db('transfers')
      .where({ payment_id: payment.id, counted: true })
      .whereNull('orphaned_at')
      .orderBy([{ column: 'block_number' }, { column: 'log_index' }])
      .first();
    to = payment.refund_address ?? first?.from_address ?? null;
    if (!to) return 'waiting';
  } else {
    return 'nothing';
  }
  await db('sweeps')
    .insert({
      id: newId('swp'),
      payment_id: payment.id,
      merchant_id: payment.merchant_id,
      chain_id: payment.chain_id,
      purpose,
      token_address: payment.token_address,
      deposit_address: payment.address,
      to_address: to,
    })
    .onConflict('payment_id')
    .ignore();
  log.info({ paymentId: payment.id, purpose, to }, 'sweep started');
  return 'progress';
}

/** 2–3. Funds a token deposit's gas when needed, then signs and stores the first sweep transaction. */
async function signFirstSweep(
  deps: SettlementDeps,
  payment: PaymentRow,
  chain: ChainConfig,
  rpc: RpcClient,
  sweep: SweepRow,
  lock: SweepLock,
  txs: SweepTxRow[],
): Promise<StepOutcome> {
  const { db, log } = deps;
  const signer = deps.wallet.signerAt(Number(payment.address_index));
  if (signer.address !== sweep.deposit_address) throw new Error(`deposit key mismatch for ${payment.id}: HD_MNEMONIC is not the one that made this address`);
  const nonce = await transactionCount(rpc, sweep.deposit_address, 'latest');
  const { baseFee, tip } = await feeData(rpc);
  const fees = depositSweepFees(baseFee, tip);

  if (sweep.token_address === null) {
    const balance = await nativeBalance(rpc, sweep.deposit_address);
    const gasLimit = await sweepGasLimit(rpc, sweep, balance);
    const value = nativeSweepValue(balance, gasLimit, fees);
    if (value === null) return skip(deps, sweep, `balance ${balance} wei cannot pay the network fee`);
    await signAndStore(db, signer, { sweepId: sweep.id, chainId: chain.chainId, role: 'sweep', to: sweep.to_address, nonce, attempt: 0, value, gasLimit, fees });
    return 'progress';
  }

  const amount = await tokenBalance(rpc, sweep.token_address, sweep.deposit_address);
  if (amount === 0n) return skip(deps, sweep, 'the deposit holds no tokens');
  const data = ERC20.encodeFunctionData('transfer', [sweep.to_address, amount]);
  const gasLimit = await estimateGas(rpc, { from: sweep.deposit_address, to: sweep.token_address, data });
  const needed = gasLimit * fees.maxFeePerGas;
  if (!(await gasFunded(deps, chain, rpc, sweep, lock, txs, needed))) return 'waiting';
  await signAndStore(db, signer, { sweepId: sweep.id, chainId: chain.chainId, role: 'sweep', to: sweep.token_address, nonce, attempt: 0, value: 0n, gasLimit, fees, data });
  log.debug({ paymentId: payment.id, sweepId: sweep.id }, 'token sweep signed');
  return 'progress';
}

/**
 * A plain transfer to an account costs exactly 21,000 gas, all of it used, so the deposit ends at 0 wei. A
 * contract (a Safe, say) may need more: ask the node; what its execution leaves unused stays in the deposit and
 * in the ledger as pending.
 */
async function sweepGasLimit(rpc: RpcClient, sweep: SweepRow, balance: bigint): Promise<bigint> {
  const code = await rpc.call<string>('eth_getCode', [sweep.to_address, 'latest']);
  if (code === '0x' || code === '0x0') return 21_000n;
  const estimate = await estimateGas(rpc, { from: sweep.deposit_address, to: sweep.to_address, value: balance / 2n });
  return estimate > 21_000n ? estimate : 21_000n;
}

/**
 * True once the deposit holds `needed` wei for gas. Otherwise makes sure a gas-tank transfer for the gap is on
 * its way (one at a time per sweep) and answers false.
 */
async function gasFunded(
  deps: SettlementDeps,
  chain: ChainConfig,
  rpc: RpcClient,
  sweep: SweepRow,
  lock: SweepLock,
  txs: SweepTxRow[],
  needed: bigint,
): Promise<boolean> {
  const { db, log } = deps;
  const balance = await nativeBalance(rpc, sweep.deposit_address);
  if (balance >= needed) return true;
  let landed = false;
  for (const funding of txs.filter((t) => t.role === 'gas_funding' && t.mined_block === null)) {
    if (await refreshReceipt(db, rpc, funding)) {
      landed = true;
      continue;
    }
    // Still on its way: make sure the node has it (the tank lock keeps tank nonces in order).
    await lock.withGasTank(chain.chainId, () => broadcastStored(db, rpc, funding));
    return false;
  }
  // A funding found mined just now may have landed after `balance` was read: read it again only then.
  const now = landed ? await nativeBalance(rpc, sweep.deposit_address) : balance;
  if (now >= needed) return true;
  if (!deps.gasTank) {
    log.warn({ chainId: chain.chainId, sweepId: sweep.id }, 'a token settlement needs gas but GAS_TANK_PRIVATE_KEY is not set; it waits');
    return false;
  }
  try {
    await fundFromGasTank({ db, rpc, lock, chainId: chain.chainId, tank: deps.gasTank, sweepId: sweep.id, deposit: sweep.deposit_address, amount: needed - now, lowWei: deps.config.gasTankLowBalanceWei, log, observer: deps.observer });
  } catch (err) {
    if (!(err instanceof GasTankEmptyError)) throw err;
    await db('sweeps').where({ id: sweep.id }).update({ last_error: err.message, updated_at: db.fn.now() });
    log.warn({ chainId: chain.chainId, sweepId: sweep.id, err: err.message }, 'gas tank cannot pay for a token settlement; it waits');
  }
  return false;
}

/** 5. The latest attempt sat unmined too long: same nonce, higher fees, stored before it is broadcast. */
async function replaceSweep(
  deps: SettlementDeps,
  payment: PaymentRow,
  chain: ChainConfig,
  rpc: RpcClient,
  sweep: SweepRow,
  latest: SweepTxRow,
  lock: SweepLock,
  txs: SweepTxRow[],
): Promise<StepOutcome> {
  const { db, log } = deps;
  if ((await transactionCount(rpc, sweep.deposit_address, 'latest')) > latest.nonce) {
    // The nonce is used, but no receipt of ours was found: a receipt can lag the count for a moment.
    return 'waiting';
  }
  const { baseFee, tip } = await feeData(rpc);
  const fees = bumpedFees(feesOf(latest), depositSweepFees(baseFee, tip));
  const gasLimit = BigInt(latest.gas_limit);
  const signer = deps.wallet.signerAt(Number(payment.address_index));
  let value = 0n;
  if (sweep.token_address === null) {
    // The same gross amount as the first attempt; the higher fee comes out of the value sent.
    const gross = BigInt(latest.value) + gasLimit * BigInt(latest.max_fee_per_gas);
    const v = nativeSweepValue(gross, gasLimit, fees);
    if (v === null) return 'waiting';
    value = v;
  } else {
    // The extra gas must be in the deposit (a top-up from the tank) before the replacement can pay for it.
    if (!(await gasFunded(deps, chain, rpc, sweep, lock, txs, gasLimit * fees.maxFeePerGas))) return 'waiting';
  }
  const row = await signAndStore(db, signer, {
    sweepId: sweep.id,
    chainId: chain.chainId,
    role: 'sweep',
    to: latest.to_address,
    nonce: latest.nonce,
    attempt: latest.attempt + 1,
    value,
    gasLimit,
    fees,
    data: sweep.token_address === null ? undefined : ERC20.encodeFunctionData('transfer', [sweep.to_address, tokenAmountOf(latest)]),
  });
  if (row) log.warn({ sweepId: sweep.id, nonce: row.nonce, attempt: row.attempt, replaces: latest.tx_hash, txHash: row.tx_hash }, 'sweep transaction not mined in time: replaced with higher fees');
  return 'progress';
}

/** The token amount a stored token sweep moves, read from its own signed bytes (the one source that cannot drift). */
function tokenAmountOf(tx: SweepTxRow): bigint {
  const [, amount] = ERC20.decodeFunctionData('transfer', Transaction.from(tx.raw_tx).data);
  return amount as bigint;
}

async function skip(deps: SettlementDeps, sweep: SweepRow, reason: string): Promise<StepOutcome> {
  await deps.db('sweeps').where({ id: sweep.id, status: 'pending' }).update({ status: 'skipped', last_error: reason, updated_at: deps.db.fn.now() });
  deps.log.warn({ sweepId: sweep.id, paymentId: sweep.payment_id, reason }, 'sweep skipped');
  deps.observer?.settlement?.('skipped', Number(sweep.chain_id));
  return 'done';
}
