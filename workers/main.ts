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
import { startMaintenance } from './maintenance.js';

/**
 * The `worker` process: consumes the queues in WORKER_QUEUES, relays the outbox, and keeps the job schedulers in
 * place. Any number of these run at once; every job is idempotent and every state change conditional.
 */
const config = loadConfigOrExit();
const log = createLogger({ level: config.logLevel, pretty: config.logPretty, name: 'worker' });
const db = createDb(config.databaseUrl, config.databasePoolMax, 'payflow-worker');
const producer = createRedis(config.redisUrl, 'producer');
const queues = createQueues(producer, config.queuePrefix);
const rpcs = new Map(config.chains.map((c) => [c.chainId, createRpcClient(c.rpcUrl)]));

// Fails fast on a node that serves another chain than the database follows (see ensureCursor).
for (const chain of config.chains) {
  try {
    await ensureCursor(db, rpcs.get(chain.chainId)!, chain);
  } catch (err) {
    log.error({ chainId: chain.chainId, err: (err as Error).message }, 'cannot start scanning this chain');
    if ((err as Error).name === 'ChainDataError') process.exit(1);
  }
}

const handlers: Record<QueueName, (job: Job) => Promise<unknown>> = {
  [QUEUES.chain]: async (job) => {
    const chain = config.chains.find((c) => c.chainId === job.data.chainId);
    if (!chain) return 'unknown chain';
    const rpc = rpcs.get(chain.chainId)!;
    await ensureCursor(db, rpc, chain);
    return scanChain({ db, rpc, chain, log });
  },
  [QUEUES.payments]: async (job) => {
    if (job.name === 'expire') return expireDuePayments(db);
    return undefined;
  },
  [QUEUES.webhooks]: async (job) => deliverWebhook({ db, config, log }, job.data.deliveryId),
};

const workerConnection = createRedis(config.redisUrl, 'worker');
const workers = config.workerQueues.map(
  (name) =>
    new Worker(name, handlers[name as QueueName], {
      connection: workerConnection,
      prefix: config.queuePrefix,
      concurrency: name === QUEUES.chain ? Math.max(config.chains.length, 1) : config.workerConcurrency,
    }),
);
for (const w of workers) {
  w.on('failed', (job, err) => log.warn({ queue: w.name, job: job?.name, jobId: job?.id, err: err.message }, 'job failed'));
  w.on('error', (err) => log.debug({ queue: w.name, err: err.message }, 'worker connection error'));
}

const relay = startOutboxRelay({ db, databaseUrl: config.databaseUrl, queues, log, pollIntervalMs: config.outboxPollIntervalMs });
const maintenance = startMaintenance({ config, db, queues, log });
log.info({ queues: config.workerQueues, chains: config.chains.map((c) => c.chainId) }, 'worker started');

let stopping = false;
async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'worker shutting down');
  // Stop taking jobs and let active ones finish; a job cut off by the platform's kill is retried elsewhere.
  await Promise.all(workers.map((w) => w.close()));
  await Promise.all([relay.stop(), maintenance.stop()]);
  await closeQueues(queues);
  await Promise.all([producer.quit().catch(() => {}), workerConnection.quit().catch(() => {}), db.destroy()]);
  log.info('worker stopped');
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
