import type { Config } from '../shared/config.js';
import type { Db } from '../shared/db.js';
import type { Logger } from '../shared/logger.js';
import { enqueueInTx } from '../shared/outbox/enqueue.js';
import { QUEUES } from '../shared/queues/names.js';
import type { Queues } from '../shared/queues/redis.js';
import { resealWebhookSecrets, type WebhookSecretBox } from '../shared/webhooks/secretSealing.js';

/**
 * Upkeep on a timer in every worker process, mostly keeping Redis honest against Postgres:
 *  - job schedulers (chain scans, expiry sweep) are upserted, so a Redis that lost its data gets them back;
 *  - webhook deliveries that are due but have no job (their job died with Redis) are put back in the outbox;
 *  - webhook signing secrets not sealed under the current WEBHOOK_SECRETS_KEY (a rotation, or rows from before
 *    sealing) are re-sealed under it.
 * All are idempotent, so every worker process can run them.
 */
export function startMaintenance(opts: { config: Config; db: Db; queues: Queues; webhookSecrets: WebhookSecretBox; log: Logger }) {
  const { config, db, queues, webhookSecrets, log } = opts;

  async function ensureSchedulers() {
    for (const chain of config.chains) {
      // Poll several times per block so a new block is seen well within one block interval.
      const every = Math.max(200, Math.round((chain.blockTimeSeconds * 1000) / 4));
      await queues[QUEUES.chain].upsertJobScheduler(`scan-${chain.chainId}`, { every }, {
        name: 'scan',
        data: { chainId: chain.chainId },
        opts: { attempts: 1, removeOnComplete: true, removeOnFail: 100 },
      });
    }
    await queues[QUEUES.payments].upsertJobScheduler('expire', { every: config.expirySweepIntervalMs }, {
      name: 'expire',
      data: {},
      opts: { attempts: 1, removeOnComplete: true, removeOnFail: 100 },
    });
  }

  async function requeueOrphanedDeliveries() {
    // Overdue by WEBHOOK_REQUEUE_AFTER_SECONDS and not leased (a lease moves next_attempt_at past the attempt):
    // its job was lost (Redis restarted empty, or removed by hand). A job that was merely slow to run meets a
    // duplicate, which its lease makes harmless.
    await db.transaction(async (trx) => {
      const stale: { id: string; attempts: number }[] = await trx('webhook_deliveries')
        .select('id', 'attempts')
        .where({ status: 'pending' })
        .where('next_attempt_at', '<', trx.raw(`now() - make_interval(secs => ?)`, [config.webhookRequeueAfterSeconds]))
        .limit(500)
        .forUpdate()
        .skipLocked();
      if (stale.length === 0) return;
      await enqueueInTx(
        trx,
        stale.map((d) => ({ queue: QUEUES.webhooks, name: 'deliver', jobId: `${d.id}-${d.attempts}-r${Date.now()}`, payload: { deliveryId: d.id } })),
      );
      log.info({ count: stale.length }, 're-queued webhook deliveries that had no job');
    });
  }

  const reportedUnreadable = new Set<string>(); // logged once per process, not every pass
  let stopped = false;
  const run = async () => {
    try {
      await ensureSchedulers();
      await requeueOrphanedDeliveries();
      const { resealed, unreadable } = await resealWebhookSecrets(db, webhookSecrets);
      if (resealed > 0) log.info({ count: resealed }, 're-sealed webhook signing secrets under the current key');
      const newlyUnreadable = unreadable.filter((id) => !reportedUnreadable.has(id));
      if (newlyUnreadable.length > 0) {
        for (const id of newlyUnreadable) reportedUnreadable.add(id);
        log.error({ endpointIds: newlyUnreadable }, 'webhook signing secrets that no configured key opens: their deliveries fail until WEBHOOK_SECRETS_KEY_PREVIOUS has that key');
      }
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'maintenance pass failed; will retry');
    }
  };
  void run();
  const timer = setInterval(() => {
    if (!stopped) void run();
  }, config.maintenanceIntervalMs);
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
}
