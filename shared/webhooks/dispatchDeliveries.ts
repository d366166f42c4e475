import { crashPoint } from '../crashPoint.js';
import type { Db } from '../db.js';
import type { Logger } from '../logger.js';
import { webhookFirstAttempts } from '../metrics.js';
import { enqueueInTx, type OutboxJob } from '../outbox/enqueue.js';
import { QUEUES } from '../queues/names.js';
import type { Queues, RedisConnection } from '../queues/redis.js';
import { withTimeout } from '../withTimeout.js';
import { handOver } from './firstAttemptHandoff.js';

/** A delivery just committed: its id, and the request id its jobs carry (or null). */
export type NewDelivery = [deliveryId: string, requestId: string | null];

/** The job of a delivery's first attempt, the same whoever sends it (this file, or the outbox in fanOut.ts). */
export function firstAttemptJob([deliveryId, requestId]: NewDelivery): OutboxJob {
  return { queue: QUEUES.webhooks, name: 'deliver', jobId: `${deliveryId}-0`, payload: requestId === null ? { deliveryId } : { deliveryId, requestId } };
}

export interface DeliveryDispatcher {
  /** Sends the first attempts of deliveries that have committed. Returns at once: they are safe in Postgres. */
  dispatch(deliveries: NewDelivery[]): void;
  /** Resolves once everything handed to `dispatch` is in Redis, in the outbox, or left to the maintenance pass. */
  drain(): Promise<void>;
}

/**
 * Where a dispatcher puts first attempts while Redis takes them:
 *   handoff  the API: onto the workers' hand-over list (firstAttemptHandoff.ts), one cheap RPUSH per batch
 *   queue    a worker: straight into BullMQ, as the jobs the outbox would have made
 */
export interface FirstAttemptTransport {
  via: 'handoff' | 'queue';
  send(batch: NewDelivery[]): Promise<unknown>;
}

export const viaHandoff = (redis: RedisConnection, queuePrefix: string): FirstAttemptTransport => ({
  via: 'handoff',
  send: (batch) => handOver(redis, queuePrefix, batch),
});

export const viaQueue = (queues: Queues): FirstAttemptTransport => ({
  via: 'queue',
  send: (batch) =>
    queues[QUEUES.webhooks].addBulk(
      batch.map((d) => {
        const j = firstAttemptJob(d);
        return { name: j.name, data: j.payload, opts: { jobId: j.jobId } };
      }),
    ),
});

const MAX_BATCH = 500;
/** After Redis refused or timed out, how long first attempts go straight to the outbox instead of trying it. */
const REDIS_PAUSE_MS = 5000;

/**
 * Creating a payment is the hottest write, and most of its deliveries' cost was the outbox: a row written in the
 * creating statement, then claimed, deleted and sent to BullMQ by a worker's relay. The delivery row already says
 * everything its first job needs (pending, due now), and a pending delivery overdue with no job is re-queued by
 * every worker's maintenance pass (workers/maintenance.ts, WEBHOOK_REQUEUE_AFTER_SECONDS). So the creating statement
 * writes no outbox row: once it has committed, the API process hands the first attempts to the workers over a Redis
 * list, and a worker makes them BullMQ jobs with a dispatcher of its own. Both send in batches (one in flight; what
 * commits meanwhile goes in the next one).
 *
 * If Redis refuses or does not answer within `addTimeoutMs`, the jobs go into the outbox after all (one small
 * transaction), and the relay sends them once Redis is back, as for any other job. Only if a process dies
 * between the commit (or the hand-over) and either of those, or Postgres refuses the outbox row as well, does a
 * first attempt wait for the maintenance pass: later, never lost. A job sent twice (a timed-out send that landed
 * after all, and its outbox copy) has the same job id, and its delivery's lease makes a second run harmless.
 */
export function createDeliveryDispatcher(opts: { db: Db; transport: FirstAttemptTransport; log: Logger; addTimeoutMs?: number }): DeliveryDispatcher {
  const { db, transport, log, addTimeoutMs = 5000 } = opts;
  let waiting: NewDelivery[] = [];
  let sending: Promise<void> | undefined;
  let skipRedisUntil = 0;

  const toRedis = async (batch: NewDelivery[]): Promise<boolean> => {
    if (Date.now() < skipRedisUntil) return false;
    try {
      await withTimeout(transport.send(batch), addTimeoutMs, `Redis did not accept the jobs within ${addTimeoutMs} ms`);
      return true;
    } catch (err) {
      skipRedisUntil = Date.now() + REDIS_PAUSE_MS;
      log.warn({ err: (err as Error).message, count: batch.length }, `first webhook attempts go through the outbox for ${REDIS_PAUSE_MS} ms: Redis did not take them`);
      return false;
    }
  };

  const send = async (batch: NewDelivery[]) => {
    if (await toRedis(batch)) {
      webhookFirstAttempts.inc({ via: transport.via }, batch.length);
      return;
    }
    try {
      await db.transaction((trx) => enqueueInTx(trx, batch.map(firstAttemptJob)));
      webhookFirstAttempts.inc({ via: 'outbox' }, batch.length);
    } catch (err) {
      webhookFirstAttempts.inc({ via: 'maintenance' }, batch.length);
      log.error(
        { err: (err as Error).message, deliveryIds: batch.map(([id]) => id) },
        'first webhook attempts reached neither Redis nor the outbox; the maintenance pass re-queues them after WEBHOOK_REQUEUE_AFTER_SECONDS',
      );
    }
  };

  const pump = async () => {
    while (waiting.length > 0) {
      const batch = waiting.length <= MAX_BATCH ? waiting : waiting.slice(0, MAX_BATCH);
      waiting = batch === waiting ? [] : waiting.slice(MAX_BATCH);
      await send(batch);
    }
    sending = undefined;
  };

  return {
    dispatch(deliveries) {
      if (deliveries.length === 0) return;
      crashPoint('before_first_attempts');
      for (const d of deliveries) waiting.push(d);
      sending ??= pump();
    },
    async drain() {
      while (sending) await sending;
    },
  };
}
