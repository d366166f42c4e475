import type { ChainConfig } from '../../shared/config.js';
import type { Db, Tx } from '../../shared/db.js';
import { ChainDataError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { recordEvent } from '../../shared/events/recordEvent.js';
import { presentPayment } from '../../shared/payments/present.js';
import type { PaymentRow } from '../../shared/payments/paymentRow.js';
import { reevaluatePayment, type ScannedChainState } from '../../shared/payments/reevaluatePayment.js';
import {
  readBlockHeaders,
  readBlocksWithNativeTransfers,
  readHeadNumber,
  readTokenTransfers,
  type ChainBlock,
  type SeenTransfer,
} from '../../shared/chain/readChain.js';
import type { RpcClient } from '../../shared/chain/rpcClient.js';

/**
 * Chain scan: follows one chain's blocks and turns them into payment state.
 *
 * Invariant: chain_blocks holds the blocks we scanned as one parentHash → hash chain ending at next_block − 1.
 * Each step, inside one Postgres transaction that holds the chain's cursor row lock (so any number of workers
 * can run this job; only one scans a chain at a time, the others skip):
 *   1. read blocks [next, next + range) and their transfers;
 *   2. if the first block's parent is not the block we hold at next − 1, the chain reorganised: walk back to the
 *      common ancestor, orphan the transfers above it, re-decide those payments (payment.reorged), and continue
 *      from the ancestor;
 *   3. otherwise record transfers to deposit addresses (unique per chain, tx, log index), record the blocks,
 *      advance the cursor, and re-decide every payment that got a transfer or is waiting for confirmations.
 * A crash anywhere rolls the whole step back; the next job redoes it. Nothing is skipped or counted twice.
 */

/** How many recent blocks we keep to find a common ancestor; deeper reorgs are reported, not repaired. */
export const REORG_WINDOW = 256;

export interface ScanDeps {
  db: Db;
  rpc: RpcClient;
  chain: ChainConfig;
  log: Logger;
  /** Called after a step commits, for metrics. */
  onStep?: (s: StepResult) => void;
}

export interface StepResult {
  chainId: number;
  head: number;
  scannedTip: number;
  blocks: number;
  transfers: number;
  reorgDepth: number;
  events: number;
}

type CursorRow = { chain_id: number; genesis_hash: string; next_block: number; tip_timestamp: Date | null };

/** Creates the chain's cursor on first sight of the chain, and refuses a node that serves another chain. */
export async function ensureCursor(db: Db, rpc: RpcClient, chain: ChainConfig): Promise<CursorRow> {
  const genesis = (await readBlockHeaders(rpc, 0, 0))[0];
  const existing: CursorRow | undefined = await db('chain_cursors').where({ chain_id: chain.chainId }).first();
  if (existing) {
    if (existing.genesis_hash !== genesis.hash) {
      throw new ChainDataError(
        `chain ${chain.chainId}: node at ${new URL(chain.rpcUrl).host} has genesis ${genesis.hash}, but this database follows ${existing.genesis_hash}; refusing to mix two chains`,
      );
    }
    return existing;
  }
  const start = chain.startBlock ?? (await readHeadNumber(rpc));
  await db('chain_cursors')
    .insert({ chain_id: chain.chainId, genesis_hash: genesis.hash, next_block: start })
    .onConflict('chain_id')
    .ignore();
  return db('chain_cursors').where({ chain_id: chain.chainId }).first();
}

async function taggedFinalBlock(rpc: RpcClient, chain: ChainConfig): Promise<number | undefined> {
  return typeof chain.confirmations === 'string' ? readHeadNumber(rpc, chain.confirmations) : undefined;
}

/** Finds the newest block we hold that is still canonical, comparing in batches from `below` down. */
async function findCommonAncestor(trx: Tx, rpc: RpcClient, chainId: number, below: number): Promise<number> {
  let top = below;
  while (top >= 0) {
    const bottom = Math.max(0, top - 31);
    const stored: { number: number; hash: string }[] = await trx('chain_blocks')
      .where({ chain_id: chainId })
      .whereBetween('number', [bottom, top])
      .orderBy('number', 'desc');
    if (stored.length === 0) break;
    const canonical = await readBlockHeaders(rpc, stored[stored.length - 1].number, stored[0].number);
    const byNumber = new Map(canonical.map((b) => [b.number, b.hash]));
    const match = stored.find((s) => byNumber.get(Number(s.number)) === s.hash);
    if (match) return Number(match.number);
    top = bottom - 1;
  }
  throw new ChainDataError(`chain ${chainId}: reorg deeper than the ${REORG_WINDOW} blocks kept; manual intervention needed`);
}

/** Records the transfers that go to deposit addresses; returns the payments touched. */
async function recordTransfers(trx: Tx, chain: ChainConfig, seen: SeenTransfer[], blocks: Map<number, ChainBlock>) {
  if (seen.length === 0) return { paymentIds: new Set<string>(), inserted: 0 };
  const recipients = [...new Set(seen.map((t) => t.to))];
  // One indexed lookup for the whole step: the cost follows the transfers in the blocks, not the open payments.
  const payments: Pick<PaymentRow, 'id' | 'address' | 'token_address' | 'merchant_id'>[] = await trx('payments')
    .select('id', 'address', 'token_address', 'merchant_id')
    .where({ chain_id: chain.chainId })
    .whereIn('address', recipients);
  if (payments.length === 0) return { paymentIds: new Set<string>(), inserted: 0 };
  const byAddress = new Map(payments.map((p) => [p.address, p]));
  const rows = seen
    .filter((t) => byAddress.has(t.to))
    .map((t) => {
      const p = byAddress.get(t.to)!;
      return {
        chain_id: chain.chainId,
        tx_hash: t.txHash,
        log_index: t.logIndex,
        block_number: t.blockNumber,
        block_hash: t.blockHash,
        block_timestamp: blocks.get(t.blockNumber)!.timestamp,
        from_address: t.from,
        to_address: t.to,
        token_address: t.tokenAddress,
        amount: t.amount.toString(),
        counted: (p.token_address ?? null) === t.tokenAddress,
        payment_id: p.id,
      };
    });
  const inserted: { payment_id: string; counted: boolean; tx_hash: string; token_address: string | null; amount: string }[] = (
    await trx.raw(
      `${trx('transfers').insert(rows).toString()}
       ON CONFLICT (chain_id, tx_hash, log_index) WHERE orphaned_at IS NULL DO NOTHING
       RETURNING payment_id, counted, tx_hash, token_address, amount`,
    )
  ).rows;
  // A wrong asset is recorded and reported, never counted toward the payment. The gas tank's own top-ups of token
  // deposits (settlement, sweep_transactions) are recorded too but are not the customer's doing: not reported.
  const wrongAsset = inserted.filter((r) => !r.counted);
  const ours = new Set<string>(
    wrongAsset.length ? await trx('sweep_transactions').whereIn('tx_hash', wrongAsset.map((r) => r.tx_hash)).pluck('tx_hash') : [],
  );
  for (const t of wrongAsset.filter((r) => !ours.has(r.tx_hash))) {
    const p = await trx('payments').where({ id: t.payment_id }).first();
    await recordEvent(trx, {
      merchantId: p.merchant_id,
      type: 'payment.unexpected_asset',
      paymentId: p.id,
      data: { ...presentPayment(p), unexpected_transfer: { tx_hash: t.tx_hash, asset: t.token_address ?? 'native', amount: t.amount } },
    });
  }
  return { paymentIds: new Set(inserted.map((r) => r.payment_id)), inserted: inserted.length };
}

async function reevaluate(trx: Tx, chain: ChainConfig, paymentIds: Set<string>, state: ScannedChainState): Promise<number> {
  const waiting: { id: string }[] = await trx('payments').select('id').where({ chain_id: chain.chainId, status: 'confirming' });
  for (const p of waiting) paymentIds.add(p.id);
  let events = 0;
  // A stable order keeps lock acquisition ordered across concurrent transactions (no deadlocks with expiry).
  for (const id of [...paymentIds].sort()) events += (await reevaluatePayment(trx, id, state)).length;
  return events;
}

/** One scan step. Returns null when another worker holds the chain. */
export async function scanChainStep(deps: ScanDeps): Promise<StepResult | null> {
  const { db, rpc, chain, log } = deps;
  const result = await db.transaction(async (trx): Promise<StepResult | null> => {
    const cursor: CursorRow | undefined = await trx('chain_cursors').where({ chain_id: chain.chainId }).forUpdate().skipLocked().first();
    if (!cursor) return null;
    const next = Number(cursor.next_block);
    const [head, tagged] = await Promise.all([readHeadNumber(rpc), taggedFinalBlock(rpc, chain)]);
    const step: StepResult = { chainId: chain.chainId, head, scannedTip: next - 1, blocks: 0, transfers: 0, reorgDepth: 0, events: 0 };
    const rewind = async (below: number) => {
      const ancestor = await findCommonAncestor(trx, rpc, chain.chainId, below);
      step.reorgDepth = next - 1 - ancestor;
      const orphaned: { payment_id: string }[] = await trx('transfers')
        .where({ chain_id: chain.chainId })
        .where('block_number', '>', ancestor)
        .whereNull('orphaned_at')
        .update({ orphaned_at: trx.fn.now() })
        .returning('payment_id');
      await trx('chain_blocks').where({ chain_id: chain.chainId }).where('number', '>', ancestor).delete();
      const ancestorBlock = await trx('chain_blocks').where({ chain_id: chain.chainId, number: ancestor }).first();
      await trx('chain_cursors').where({ chain_id: chain.chainId }).update({ next_block: ancestor + 1, updated_at: trx.fn.now() });
      step.scannedTip = ancestor;
      step.events = await reevaluate(trx, chain, new Set(orphaned.map((o) => o.payment_id)), {
        scannedTip: ancestor,
        tipTimestamp: ancestorBlock?.timestamp ?? cursor.tip_timestamp,
        taggedFinalBlock: tagged,
      });
      log.warn({ chainId: chain.chainId, depth: step.reorgDepth, ancestor, orphanedTransfers: orphaned.length }, 'chain reorganised');
      return step;
    };

    if (next > head) {
      // No new block; but a reorg onto a shorter chain shows only as our tip no longer being canonical.
      const held: { hash: string } | undefined = await trx('chain_blocks').where({ chain_id: chain.chainId, number: head }).first();
      if (held && (await readBlockHeaders(rpc, head, head))[0].hash !== held.hash) return rewind(head);
      return step;
    }

    const to = Math.min(head, next + chain.maxBlockRange - 1);
    const [{ blocks, transfers: native }, tokenTransfers] = await Promise.all([
      readBlocksWithNativeTransfers(rpc, next, to),
      readTokenTransfers(rpc, chain.tokens.map((t) => t.address), next, to),
    ]);

    const parent: { hash: string } | undefined = await trx('chain_blocks').where({ chain_id: chain.chainId, number: next - 1 }).first();
    if (parent && parent.hash !== blocks[0].parentHash) return rewind(next - 1);
    // The batch itself must be one chain, and every log must come from the blocks we read; otherwise the chain
    // moved between our calls and the step is retried.
    for (let i = 1; i < blocks.length; i++) {
      if (blocks[i].parentHash !== blocks[i - 1].hash) throw new ChainDataError(`chain ${chain.chainId} changed during the scan`);
    }
    const byNumber = new Map(blocks.map((b) => [b.number, b]));
    for (const t of tokenTransfers) {
      if (byNumber.get(t.blockNumber)?.hash !== t.blockHash) throw new ChainDataError(`chain ${chain.chainId} changed during the scan`);
    }

    const { paymentIds, inserted } = await recordTransfers(trx, chain, [...native, ...tokenTransfers], byNumber);
    await trx.raw(
      `${trx('chain_blocks')
        .insert(blocks.map((b) => ({ chain_id: chain.chainId, number: b.number, hash: b.hash, parent_hash: b.parentHash, timestamp: b.timestamp })))
        .toString()} ON CONFLICT (chain_id, number) DO UPDATE SET hash = excluded.hash, parent_hash = excluded.parent_hash, timestamp = excluded.timestamp`,
    );
    await trx('chain_blocks').where({ chain_id: chain.chainId }).where('number', '<', to - REORG_WINDOW).delete();
    const tip = blocks[blocks.length - 1];
    await trx('chain_cursors')
      .where({ chain_id: chain.chainId })
      .update({ next_block: to + 1, tip_timestamp: tip.timestamp, final_block: tagged ?? null, updated_at: trx.fn.now() });
    step.scannedTip = to;
    step.blocks = blocks.length;
    step.transfers = inserted;
    step.events = await reevaluate(trx, chain, paymentIds, { scannedTip: to, tipTimestamp: tip.timestamp, taggedFinalBlock: tagged });
    return step;
  });
  if (result) deps.onStep?.(result);
  return result;
}

/** Scans until caught up with the head (bounded, so one job never runs for long). */
export async function scanChain(deps: ScanDeps, maxSteps = 20): Promise<StepResult | null> {
  let last: StepResult | null = null;
  for (let i = 0; i < maxSteps; i++) {
    const step = await scanChainStep(deps);
    if (!step) return last;
    last = step;
    if (step.scannedTip >= step.head && step.reorgDepth === 0) break;
  }
  return last;
}
