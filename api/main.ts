import { loadConfigOrExit } from '../shared/config.js';
import { createDb } from '../shared/db.js';
import { createLogger } from '../shared/logger.js';
import { registerSampledMetrics, setMetricsService } from '../shared/metrics.js';
import { closeQueues, createQueues, createRedis } from '../shared/queues/redis.js';
import { createDepositWallet } from '../shared/wallet/hdWallet.js';
import { createDeliveryDispatcher, viaHandoff } from '../shared/webhooks/dispatchDeliveries.js';
import { createApp } from './app.js';
import { answerHealth } from './health.js';
import { jwtKey } from './auth/merchantAuth.js';
import { deleteExpiredIdempotencyKeys } from './middleware/idempotency.js';
import { createApiServer } from './server.js';

/** The `web` process: serves the HTTP API until SIGTERM, then drains in-flight requests and exits 0. */
const config = loadConfigOrExit();
const log = createLogger({ level: config.logLevel, pretty: config.logPretty, name: 'api' });
const db = createDb(config.databaseUrl, config.databasePoolMax, 'payflow-api');
const redis = createRedis(config.redisUrl, 'producer');
const queues = createQueues(redis, config.queuePrefix);
setMetricsService('api');
registerSampledMetrics({ db, queues, handoff: { redis, queuePrefix: config.queuePrefix } });
const deliveries = createDeliveryDispatcher({ db, transport: viaHandoff(redis, config.queuePrefix), log });
let stopping = false;
const app = createApp({
  config,
  db,
  log,
  // Checks the mnemonic now, derives the deposit account on first use (not before listening: README "Performance").
  wallet: createDepositWallet(config.hdMnemonic),
  jwtKey: jwtKey(config.jwtSecret),
  redis,
  queues,
  deliveries,
  isStopping: () => stopping,
});

const handle = app.callback();
const server = createApiServer(config, (req, res) => {
  // While draining, tell keep-alive clients not to reuse this connection: their next request opens a new one
  // (to another instance) instead of racing our close and seeing a reset. (HTTP/2 forbids the header.)
  if (stopping && req.httpVersionMajor === 1) res.setHeader('Connection', 'close');
  if (answerHealth(req, res)) return;
  void handle(req, res);
});
server.listen(config.port, () => log.info({ port: config.port, protocol: server.protocol }, 'api listening'));
// Secrets in the config are redacted by the logger (REDACT_PATHS); test/integration/apiTransport.test.ts checks it.
log.debug({ config }, 'configuration');

// Idempotency keys are replayable for IDEMPOTENCY_RETENTION_HOURS, then deleted here (every API process runs it;
// a DELETE twice is harmless). Lookups ignore expired keys anyway, so a late sweep never replays a stale answer.
const sweepIdempotencyKeys = () =>
  deleteExpiredIdempotencyKeys(db, config.idempotencyRetentionHours).catch((err) => log.warn({ err: (err as Error).message }, 'idempotency key sweep failed'));
const idempotencySweep = setInterval(sweepIdempotencyKeys, 15 * 60_000);
idempotencySweep.unref();
void sweepIdempotencyKeys();

async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'api shutting down');
  clearInterval(idempotencySweep);
  await server.close(20_000);
  await deliveries.drain(); // first webhook attempts of payments created just before: to Redis or the outbox
  await closeQueues(queues).catch(() => {});
  await Promise.all([db.destroy(), redis.quit().catch(() => {})]);
  log.info('api stopped');
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
