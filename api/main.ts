import { createServer } from 'node:http';
import { loadConfigOrExit } from '../shared/config.js';
import { createDb } from '../shared/db.js';
import { createLogger } from '../shared/logger.js';
import { createDepositWallet } from '../shared/wallet/hdWallet.js';
import { createApp } from './app.js';
import { jwtKey } from './auth/merchantAuth.js';

/** The `web` process: serves the HTTP API until SIGTERM, then drains in-flight requests and exits 0. */
const config = loadConfigOrExit();
const log = createLogger({ level: config.logLevel, pretty: config.logPretty, name: 'api' });
const db = createDb(config.databaseUrl, config.databasePoolMax, 'payflow-api');
const app = createApp({ config, db, log, wallet: createDepositWallet(config.hdMnemonic), jwtKey: jwtKey(config.jwtSecret) });

const server = createServer(app.callback());
server.keepAliveTimeout = 65_000; // longer than common load balancer idle timeouts, so they close first
server.listen(config.port, () => log.info({ port: config.port }, 'api listening'));

let stopping = false;
async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'api shutting down');
  server.close();
  server.closeIdleConnections();
  const force = setTimeout(() => server.closeAllConnections(), 20_000);
  await new Promise((resolve) => server.once('close', resolve));
  clearTimeout(force);
  await db.destroy();
  log.info('api stopped');
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
