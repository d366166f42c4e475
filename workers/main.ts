import { Worker, type Job } from 'bullmq';
import { loadConfigOrExit } from '../shared/config.js';
import { createDb } from '../shared/db.js';
import { createLogger } from '../shared/logger.js';
import { createRpcClient } from '../shared/chain/rpcClient.js';
import { QUEUES, type QueueName } from '../shared/queues/names.js';
import { createQueues, createRedis, closeQueues } from '../shared/queues/redis.js';
import { ensureCursor, scanChain } from './chain/scanChain.js';
import { expireDuePayments } from './payments/expirePayments.js';
import { deliverWebhook } from './webhooks/deliverWebhook.js';
import { startOutboxRelay } from './outbox/relayOutbox.js';
import { startFirstAttemptRelay } from './webhooks/relayFirstAttempts.js';
import { startMaintenance } from './maintenance.js';
import { startAddressPoolFiller } from './wallet/addressPoolFiller.js';
import { settlePayment, type SettlementDeps } from './settlement/settlePayment.js';
import { startSettlementReconciler } from './settlement/reconcileSettlements.js';
import { gasTankWallet } from './settlement/gasTank.js';
import { createDepositWallet } from '../shared/wallet/hdWallet.js';
import { startMetricsServer } from './metricsServer.js';
import { createWebhookSecretBox } from '../shared/webhooks/secretSealing.js';
import {
  chainHead,
  chainHeadLag,
  chainReorgs,
  chainScannedBlock,
  outboxRelayLag,
  outboxRelayed,
  registerSampledMetrics,
  rpcObserver,
  setGasTankBalance,
  setMetricsService,
  settlementsTotal,
  transfersDetected,
  webhookAttemptDuration,
  webhookDeliveries,
} from '../shared/metrics.js';
import type { StepResult } from './chain/scanChain.js';

/**
 * The `worker` process: consumes the queues in WORKER_QUEUES, relays the outbox, and keeps the job schedulers in
 * place. Any number of these run at once; every job is idempotent and every state change conditional.
 */
const config = loadConfigOrExit();
const log = createLogger({ level: config.logLevel, pretty: config.logPretty, name: 'worker' });
const db = createDb(config.databaseUrl, config.databasePoolMax, 'payflow-worker');
const producer = createRedis(config.redisUrl, 'producer');
const queues = createQueues(producer, config.queuePrefix);
const rpcs = new Map(config.chains.map((c) => [c.chainId, createRpcClient(c.rpcUrl, { observer: rpcObserver(c.chainId) })]));
const webhookSecrets = createWebhookSecretBox(config.webhookSecretsKeys);
setMetricsService('worker');
registerSampledMetrics({ db, queues, handoff: { redis: producer, queuePrefix: config.queuePrefix } });
const metricsServer = await startMetricsServer({ ports: config.workerMetricsPorts, token: config.metricsToken, log });

function observeScanStep(s: StepResult) {
  const chain_id = String(s.chainId);
  chainHead.set({ chain_id }, s.head);
  chainScannedBlock.set({ chain_id }, s.scannedTip);
  chainHeadLag.set({ chain_id }, Math.max(0, s.head - s.scannedTip));
  if (s.transfers > 0) transfersDetected.inc({ chain_id }, s.transfers);
  if (s.reorgDepth > 0) chainReorgs.inc({ chain_id });
}

/** The request that caused a job (X-Request-Id), on every log line the job writes. */
const jobLog = (job: Job) => log.child({ queue: job.queueName, jobId: job.id, ...(job.data?.requestId ? { requestId: job.data.requestId } : {}) });

// Fails fast on a node that serves another chain than the database follows (see ensureCursor). A chain whose
// node is down at start is ensured by its first scan job instead.
const cursorReady = new Set<number>();
for (const chain of config.chains) {
  try {
    await ensureCursor(db, rpcs.get(chain.chainId)!, chain);
    cursorReady.add(chain.chainId);
  } catch (err) {
    log.error({ chainId: chain.chainId, err: (err as Error).message }, 'cannot start scanning this chain');
    if ((err as Error).name === 'ChainDataError') process.exit(1);
  }
}

const settlement: SettlementDeps = {
  db,
  config,
  log,
  wallet: createDepositWallet(config.hdMnemonic),
  gasTank: gasTankWallet(config.gasTankPrivateKey),
  rpcFor: (chainId) => rpcs.get(chainId),
  observer: {
    gasTankBalance: (chainId, wei) => setGasTankBalance(chainId, wei),
    settlement: (outcome, chainId) => settlementsTotal.inc({ outcome, chain_id: String(chainId) }),
  },
};

const handlers: Record<QueueName, (job: Job) => Promise<unknown>> = {
  [QUEUES.settlement]: async (job) => settlePayment(settlement, job.data.paymentId),
  [QUEUES.chain]: async (job) => {
    const chain = config.chains.find((c) => c.chainId === job.data.chainId);
    if (!chain) return 'unknown chain';
    const rpc = rpcs.get(chain.chainId)!;
    if (!cursorReady.has(chain.chainId)) {
      await ensureCursor(db, rpc, chain);
      cursorReady.add(chain.chainId);
    }
    return scanChain({ db, rpc, chain, log, onStep: observeScanStep });
  },
  [QUEUES.payments]: async (job) => {
    if (job.name === 'expire') return expireDuePayments(db);
    return undefined;
  },
  [QUEUES.webhooks]: async (job) => {
    const jlog = jobLog(job);
    const outcome = await deliverWebhook(
      {
        db,
        config,
        secrets: webhookSecrets,
        log: jlog,
        requestId: job.data.requestId,
        onAttempt: (o, seconds) => {
          webhookDeliveries.inc({ outcome: o });
          webhookAttemptDuration.observe({ outcome: o }, seconds);
        },
      },
      job.data.deliveryId,
    );
    if (outcome === 'skipped') webhookDeliveries.inc({ outcome });
    jlog.debug({ deliveryId: job.data.deliveryId, outcome }, 'webhook job done');
    return outcome;
  },
};

const workerConnection = createRedis(config.redisUrl, 'worker');
/** Jobs this process is running, with their lock tokens, so a shutdown past the grace can hand them back at once. */
const running = new Map<string, { job: Job; token?: string }>();
const tracked = (handler: (job: Job) => Promise<unknown>) => async (job: Job, token?: string) => {
  const key = `${job.queueName}:${job.id}`;
  running.set(key, { job, token });
  try {
    return await handler(job);
  } finally {
    running.delete(key);
  }
};
const workers = config.workerQueues.map(
  (name) =>
    new Worker(name, tracked(handlers[name as QueueName]), {
      connection: workerConnection,
      prefix: config.queuePrefix,
      concurrency:
        name === QUEUES.chain ? Math.max(config.chains.length, 1) : name === QUEUES.settlement ? config.settlementConcurrency : config.workerConcurrency,
    }),
);
for (const w of workers) {
  w.on('failed', (job, err) => (job ? jobLog(job) : log).warn({ queue: w.name, job: job?.name, jobId: job?.id, err: err.message }, 'job failed'));
  w.on('error', (err) => log.debug({ queue: w.name, err: err.message }, 'worker connection error'));
}

const relay = startOutboxRelay({
  db,
  databaseUrl: config.databaseUrl,
  queues,
  log,
  pollIntervalMs: config.outboxPollIntervalMs,
  onBatch: (r) => {
    outboxRelayed.inc(r.relayed);
    outboxRelayLag.set(r.oldestLagSeconds);
  },
});
const firstAttempts = startFirstAttemptRelay({ db, queues, redisUrl: config.redisUrl, queuePrefix: config.queuePrefix, log });
const maintenance = startMaintenance({ config, db, queues, webhookSecrets, log });
const addressPool = startAddressPoolFiller({ db, wallet: settlement.wallet, size: config.depositAddressPoolSize, log });
const settlementReconciler = config.workerQueues.includes(QUEUES.settlement)
  ? startSettlementReconciler(settlement, config.settlementIntervalMs)
  : undefined;
log.info({ queues: config.workerQueues, chains: config.chains.map((c) => c.chainId) }, 'worker started');

let stopping = false;
async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'worker shutting down');
  // Stop taking jobs and let active ones finish within the grace (inside Heroku's 30 s between SIGTERM and SIGKILL).
  // Past it, the jobs still active are handed back to the queue and the process exits anyway.
  const drained = Promise.all(workers.map((w) => w.close()));
  let graceTimer: NodeJS.Timeout | undefined;
  const inGrace = await Promise.race([
    drained.then(() => true),
    new Promise<boolean>((resolve) => {
      graceTimer = setTimeout(() => resolve(false), config.workerShutdownGraceMs);
    }),
  ]);
  clearTimeout(graceTimer);
  if (!inGrace) {
    log.warn({ graceMs: config.workerShutdownGraceMs }, 'active jobs did not finish within the grace; releasing them');
    // Back to waiting under our lock token, so another worker takes them now rather than after the stalled-job
    // check; whatever this process still writes for them is redone there (jobs are idempotent).
    await Promise.all([...running.values()].map(({ job, token }) => job.moveToWait(token).catch(() => {})));
    await Promise.all(workers.map((w) => w.close(true).catch(() => {})));
  }
  await Promise.all([relay.stop(), firstAttempts.stop(), maintenance.stop(), addressPool.stop(), settlementReconciler?.stop()]);
  await closeQueues(queues);
  await Promise.all([producer.quit().catch(() => {}), workerConnection.quit().catch(() => {}), db.destroy()]);
  await metricsServer.close();
  log.info('worker stopped');
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
