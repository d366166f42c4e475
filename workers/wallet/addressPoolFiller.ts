import type { Db } from '../../shared/db.js';
import type { Logger } from '../../shared/logger.js';
import { fillAddressPool } from '../../shared/wallet/addressPool.js';
import type { DepositWallet } from '../../shared/wallet/hdWallet.js';

const MIN_CHECK_INTERVAL_MS = 1000;
const MAX_CHECK_INTERVAL_MS = 30_000;
/**
 * How fast we assume all API processes together could take addresses (several times what one takes here under the
 * bench's POST load, ≈ 3.5k/s): a pool well above its refill mark is counted again only once it could have fallen
 * to it at that rate. If it ever empties anyway, the API derives addresses itself, so nothing fails; it is slower.
 */
const ASSUMED_MAX_TAKES_PER_SECOND = 10_000;

/**
 * Keeps deposit_address_pool stocked (DEPOSIT_ADDRESS_POOL_SIZE; 0 = off, the API then derives addresses
 * itself). It refills once the pool is down to half, in one go up to the full size: filling in big steps rather
 * than trickling keeps the derivation work (CPU) out of the busiest moments. Every worker runs it; see
 * fillAddressPool for why that is harmless. Counting a big pool is not free, so a full one is counted again only
 * when it could be near its refill mark (ASSUMED_MAX_TAKES_PER_SECOND), every 1-30 s.
 */
export function startAddressPoolFiller(opts: { db: Db; wallet: DepositWallet; size: number; log: Logger }) {
  const { db, wallet, size, log } = opts;
  const refillAt = Math.floor(size / 2);
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  const pass = async (): Promise<number> => {
    try {
      const { stocked, added } = await fillAddressPool(db, wallet, size, refillAt);
      if (added > 0) log.debug({ added, size }, 'deposit address pool refilled');
      return added > 0 ? MIN_CHECK_INTERVAL_MS : nextCheckInMs(stocked, refillAt);
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'deposit address pool refill failed; will retry');
      return MIN_CHECK_INTERVAL_MS;
    }
  };
  const run = () => {
    running = pass().then((delayMs) => {
      running = undefined;
      if (!stopped) timer = setTimeout(run, delayMs);
    });
  };
  if (size > 0) run();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}

/** When to count a pool of `stocked` addresses again: once takes at the assumed top rate could bring it to its mark. */
export function nextCheckInMs(stocked: number, refillAt: number): number {
  const ms = ((stocked - refillAt) / ASSUMED_MAX_TAKES_PER_SECOND) * 1000;
  return Math.min(MAX_CHECK_INTERVAL_MS, Math.max(MIN_CHECK_INTERVAL_MS, Math.floor(ms)));
}
