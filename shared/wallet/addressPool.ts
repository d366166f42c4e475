import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { Db } from '../db.js';
import type { DepositWallet } from './hdWallet.js';

export interface PooledAddress {
  index: number;
  address: string;
}

/** How many addresses an API process takes from the pool at a time, and how low its stock gets before it takes more
 * (in the background: requests never queue behind a refill while the pool has addresses). */
const TAKE_BATCH = 64;
const REFILL_BELOW = 32;
/** When the pool is empty, an API process derives this many itself (slower, but a payment never waits on a worker). */
const FALLBACK_BATCH = 4;
/** Addresses a worker derives between two yields to its event loop (~0.5 ms each). */
const DERIVE_CHUNK = 50;
/** A refill recounts the pool after this many addresses, so workers refilling at once stop near `size`. */
const RECOUNT_EVERY = 10_000;

/**
 * The API side of the pre-derived address pool (migration 20261126060000): custodial deposit addresses for new
 * payments, taken from deposit_address_pool a batch at a time, so the request path does no elliptic-curve work.
 * Taking is a DELETE … SKIP LOCKED, so several API processes never get the same address. Addresses taken and not
 * used when the process stops are skipped indices, which is harmless: no payment ever shows them.
 */
export function createAddressSource(db: Db, wallet: DepositWallet) {
  const buffer: PooledAddress[] = [];
  let refilling: Promise<void> | undefined;
  // Where the last take ended. Taken rows stay in the index as dead entries until vacuum, and a take that started
  // from the lowest index again stepped over all of them: 0.2 ms per take on a fresh pool, 5 ms after tens of
  // thousands (bench). Starting past the last take skips them; once nothing is left above it, it starts from 0.
  let after = -1;

  const takeFromPool = async () => {
    const { rows } = await db.raw(
      `DELETE FROM deposit_address_pool
        WHERE address_index IN (SELECT address_index FROM deposit_address_pool WHERE wallet_fingerprint = ? AND address_index > ?
                                 ORDER BY address_index LIMIT ? FOR UPDATE SKIP LOCKED)
        RETURNING address_index, address`,
      [wallet.fingerprint(), after, TAKE_BATCH],
    );
    const taken = (rows as { address_index: string; address: string }[]).map((r) => ({ index: Number(r.address_index), address: r.address })).sort((a, b) => a.index - b.index);
    if (taken.length > 0) after = taken[taken.length - 1].index;
    return taken;
  };

  /** Takes from the pool; only a take that found the buffer empty (`derive`) falls back to deriving here. */
  async function refill(derive: boolean): Promise<void> {
    let taken = await takeFromPool();
    if (taken.length === 0 && after >= 0) {
      after = -1; // rows below (skipped while another process held them, or given up by a failed take)
      taken = await takeFromPool();
    }
    if (taken.length > 0) {
      buffer.push(...taken);
      return;
    }
    if (!derive) return;
    const reserved = await db.raw(`SELECT nextval('deposit_address_index_seq') AS index FROM generate_series(1, ?)`, [FALLBACK_BATCH]);
    for (const r of reserved.rows as { index: number }[]) buffer.push({ index: Number(r.index), address: wallet.addressAt(Number(r.index)) });
  }

  return {
    async take(): Promise<PooledAddress> {
      const startRefill = (derive: boolean) => (refilling ??= refill(derive).finally(() => (refilling = undefined)));
      while (buffer.length === 0) await startRefill(true);
      // Ahead of need: from the pool only (elliptic-curve work on this event loop waits until a take finds nothing).
      if (buffer.length <= REFILL_BELOW) startRefill(false).catch(() => {}); // a failure shows on the next empty take
      return buffer.shift()!;
    },
    /** Gives back an address taken for a payment that was not created (it is still unused). */
    giveBack(address: PooledAddress): void {
      buffer.unshift(address);
    },
  };
}

export type AddressSource = ReturnType<typeof createAddressSource>;

/**
 * The worker side: tops the pool up to `size` addresses of this wallet once it holds `refillAtOrBelow` or fewer
 * (default: any shortfall), deriving in chunks that yield to the event
 * loop so scans and deliveries in the same process keep running. Indices come from the same sequence as every
 * other custodial address, so a pooled address can never collide with one derived elsewhere. The pool is counted
 * when a pass starts and again every RECOUNT_EVERY addresses, not after every chunk (at 250k rows a count takes
 * ≈ 30 ms, and a refill counted thousands of times); workers filling at once may overshoot `size` by up to that
 * many each: harmless, the addresses are used later. Returns how many the pool held when the pass started, and how
 * many it added.
 */
export async function fillAddressPool(
  db: Db,
  wallet: DepositWallet,
  size: number,
  refillAtOrBelow = size,
): Promise<{ stocked: number; added: number }> {
  const fingerprint = wallet.fingerprint();
  const countPool = async () =>
    (await db.raw(`SELECT count(*)::int AS n FROM deposit_address_pool WHERE wallet_fingerprint = ?`, [fingerprint])).rows[0].n as number;
  const stocked = await countPool();
  if (stocked > refillAtOrBelow) return { stocked, added: 0 };
  let added = 0;
  let level = stocked;
  let sinceCount = 0;
  while (level < size) {
    if (sinceCount >= RECOUNT_EVERY) {
      level = await countPool();
      sinceCount = 0;
      continue;
    }
    const n = Math.min(size - level, DERIVE_CHUNK);
    const reserved = await db.raw(`SELECT nextval('deposit_address_index_seq') AS index FROM generate_series(1, ?)`, [n]);
    const derived = (reserved.rows as { index: number }[]).map((r) => ({
      address_index: Number(r.index),
      address: wallet.addressAt(Number(r.index)),
      wallet_fingerprint: fingerprint,
    }));
    await db('deposit_address_pool').insert(derived);
    added += derived.length;
    sinceCount += derived.length;
    level += derived.length;
    await yieldToEventLoop();
  }
  return { stocked, added };
}
