import { crashPoint } from '../../shared/crashPoint.js';
import type { Db } from '../../shared/db.js';
import type { Logger } from '../../shared/logger.js';
import { createRedis, type Queues } from '../../shared/queues/redis.js';
import { createDeliveryDispatcher, viaQueue } from '../../shared/webhooks/dispatchDeliveries.js';
import { takeHandedOver } from '../../shared/webhooks/firstAttemptHandoff.js';

const TAKE_MAX = 500;
/** How long one blocking take waits; also the longest a stop waits for it. */
const TAKE_WAIT_SECONDS = 1;
/**
 * After a batch, how long to let the list fill before the next take. BullMQ's addBulk costs ≈ 50 µs of CPU a job
 * in batches of a few and ≈ 20 in batches of 100 or more (README "Performance"); under a steady stream of payments
 * this pause makes the batches big. A first attempt after a quiet spell is taken at once.
 */
const COALESCE_MS = 20;

export interface FirstAttemptRelay {
  stop(): Promise<void>;
}

/**
 * Turns the first attempts that API processes handed over (shared/webhooks/firstAttemptHandoff.ts) into BullMQ
 * jobs. Every worker process runs one; each entry is taken by exactly one of them.
 * A worker killed between the take and the send leaves those deliveries to the maintenance pass, as an API process
 * killed after commit does: late, never lost.
 */
export function startFirstAttemptRelay(opts: { db: Db; queues: Queues; redisUrl: string; queuePrefix: string; log: Logger }): FirstAttemptRelay {
  const { db, queues, queuePrefix, log } = opts;
  // A blocking take holds its connection: it gets one of its own.
  const taker = createRedis(opts.redisUrl, 'worker');
  const dispatcher = createDeliveryDispatcher({ db, transport: viaQueue(queues), log });
  let stopped = false;
  let failures = 0;

  const loop = (async () => {
    while (!stopped) {
      try {
        const batch = await takeHandedOver(taker, queuePrefix, TAKE_MAX, TAKE_WAIT_SECONDS);
        failures = 0;
        if (batch.length === 0) continue;
        crashPoint('after_first_attempts_taken');
        dispatcher.dispatch(batch);
        await dispatcher.drain();
        if (batch.length < TAKE_MAX && !stopped) await new Promise((resolve) => setTimeout(resolve, COALESCE_MS));
      } catch (err) {
        if (stopped) break;
        failures++;
        if (failures === 1 || failures % 30 === 0) log.warn({ err: (err as Error).message }, 'taking handed-over first webhook attempts failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 100 * 2 ** failures)));
      }
    }
  })();

  return {
    async stop() {
      stopped = true;
      await loop;
      await dispatcher.drain();
      await taker.quit().catch(() => taker.disconnect());
    },
  };
}
