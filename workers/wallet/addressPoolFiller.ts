import type { Db } from '../../shared/db.js';
import type { Logger } from '../../shared/logger.js';
import { fillAddressPool } from '../../shared/wallet/addressPool.js';
import type { DepositWallet } from '../../shared/wallet/hdWallet.js';

const CHECK_INTERVAL_MS = 1000;

/**
 * Keeps deposit_address_pool stocked (DEPOSIT_ADDRESS_POOL_SIZE; 0 = off, the API then derives addresses
 * itself). It refills once the pool is down to half, in one go up to the full size: filling in big steps rather
 * than trickling keeps the derivation work (CPU) out of the busiest moments. Every worker runs it; see
 * fillAddressPool for why that is harmless.
 */
export function startAddressPoolFiller(opts: { db: Db; wallet: DepositWallet; size: number; log: Logger }) {
  const { db, wallet, size, log } = opts;
  let stopped = false;
  let running: Promise<void> | undefined;
  const pass = async () => {
    try {
      const added = await fillAddressPool(db, wallet, size, Math.floor(size / 2));
      if (added > 0) log.debug({ added, size }, 'deposit address pool refilled');
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'deposit address pool refill failed; will retry');
    }
  };
  const run = () => {
    if (!stopped && !running) running = pass().finally(() => (running = undefined));
  };
  const timer = size > 0 ? setInterval(run, CHECK_INTERVAL_MS) : undefined;
  if (size > 0) run();
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
