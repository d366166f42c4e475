import { createServer } from 'node:http';
import { Server as NetServer } from 'node:net';
import { loadConfigOrExit } from '../shared/config.js';
import { createDb } from '../shared/db.js';
import { createLogger } from '../shared/logger.js';
import { registerSampledMetrics, setMetricsService } from '../shared/metrics.js';
import { closeQueues, createQueues, createRedis } from '../shared/queues/redis.js';
import { createDepositWallet } from '../shared/wallet/hdWallet.js';
import { createApp } from './app.js';
import { jwtKey } from './auth/merchantAuth.js';

/** The `web` process: serves the HTTP API until SIGTERM, then drains in-flight requests and exits 0. */
const config = loadConfigOrExit();
const log = createLogger({ level: config.logLevel, pretty: config.logPretty, name: 'api' });
const db = createDb(config.databaseUrl, config.databasePoolMax, 'payflow-api');
const redis = createRedis(config.redisUrl, 'producer');
const queues = createQueues(redis, config.queuePrefix);
setMetricsService('api');
registerSampledMetrics({ db, queues });
let stopping = false;
const app = createApp({
  config,
  db,
  log,
  wallet: createDepositWallet(config.hdMnemonic),
  jwtKey: jwtKey(config.jwtSecret),
  redis,
  queues,
  isStopping: () => stopping,
});

const handle = app.callback();
const server = createServer((req, res) => {
  // While draining, tell keep-alive clients not to reuse this connection: their next request opens a new one
  // (to another instance) instead of racing our close and seeing a reset.
  if (stopping) res.setHeader('Connection', 'close');
  void handle(req, res);
});
server.keepAliveTimeout = 65_000; // longer than common load balancer idle timeouts, so they close first
server.listen(config.port, () => log.info({ port: config.port }, 'api listening'));

/** How long keep-alive connections may still bring a (last) request after SIGTERM. */
const IDLE_CONNECTION_DRAIN_MS = 1000;

async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'api shutting down');
  // Stop accepting connections but keep the open keep-alive ones for a moment: a request arriving on one now is
  // answered with `Connection: close` (above) instead of racing our close and seeing a reset. net.Server's close
  // does exactly that; http.Server's would also drop idle connections at once. Then drop those still idle.
  const closed = new Promise((resolve) => server.once('close', resolve));
  NetServer.prototype.close.call(server);
  await new Promise((resolve) => setTimeout(resolve, IDLE_CONNECTION_DRAIN_MS));
  server.closeIdleConnections();
  const force = setTimeout(() => server.closeAllConnections(), 20_000);
  await closed;
  clearTimeout(force);
  await closeQueues(queues).catch(() => {});
  await Promise.all([db.destroy(), redis.quit().catch(() => {})]);
  log.info('api stopped');
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
