/**
 * `npm start`: the whole gateway on one machine. What is not configured is started locally:
 *   DATABASE_URL unset → embedded Postgres (data in .payflow/pg)
 *   REDIS_URL unset    → redis-server on loopback (installed with apt when missing and possible)
 *   CHAINS unset       → a hardhat dev chain on 127.0.0.1:$DEV_CHAIN_PORT with a USDC token
 * then migrations, then the API and a worker as separate processes, as the Procfile runs them.
 *
 * The dev chain keeps no state between runs, so a restart starts the database clean as well (it would otherwise
 * describe payments on a chain that no longer exists). Secrets and the demo API key are kept in .payflow/local.json.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createDb, migrateLatest } from '../shared/db.js';
import { hashApiKey } from '../shared/merchants/apiKeys.js';
import { createMerchant } from '../shared/merchants/createMerchant.js';
import { startEmbeddedPostgres, resetDatabase } from './devstack/postgres.js';
import { ensureRedisServer, startRedis } from './devstack/redis.js';
import { Wallet } from 'ethers';
import { startDevChain, devAccounts, rpcCall } from './devstack/chain.js';
import { deployDevToken } from './devstack/token.js';
import { loadOrCreateSecrets, PAYFLOW_HOME } from './localStack.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const say = (line: string) => process.stdout.write(`${line}\n`);
const fail = (line: string): never => {
  process.stderr.write(`payflow: ${line}\n`);
  process.exit(1);
};

function portFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) > 65535) fail(`configuration error: ${name}: must be a port number, got "${raw}"`);
  return Number(raw);
}

const stops: (() => Promise<void>)[] = [];
const children: ChildProcess[] = [];

async function main() {
  const apiPort = portFromEnv('PORT', 3000);
  const chainPort = portFromEnv('DEV_CHAIN_PORT', 8545);
  const blockTimeRaw = process.env.DEV_BLOCK_TIME ?? '1';
  if (!/^\d+(\.\d+)?$/.test(blockTimeRaw) || Number(blockTimeRaw) <= 0) fail(`configuration error: DEV_BLOCK_TIME: must be seconds > 0, got "${blockTimeRaw}"`);
  const blockTime = Number(blockTimeRaw);
  const secrets = loadOrCreateSecrets();
  const adminToken = process.env.ADMIN_TOKEN || secrets.adminToken;

  let databaseUrl = process.env.DATABASE_URL;
  const embeddedDb = !databaseUrl;
  if (!databaseUrl) {
    const pg = await startEmbeddedPostgres({ dataDir: path.join(PAYFLOW_HOME, 'pg'), port: portFromEnv('LOCAL_PG_PORT', 54329) });
    stops.unshift(pg.stop);
    databaseUrl = pg.url;
    say(`  postgres   ${pg.url.replace(/:[^:@/]+@/, ':***@')} (embedded, data in ${path.relative(repoRoot, PAYFLOW_HOME)}/pg)`);
  }

  let redisUrl = process.env.REDIS_URL;
  if (!redisUrl) {
    await ensureRedisServer();
    const redis = await startRedis({ port: portFromEnv('LOCAL_REDIS_PORT', 6389), dir: PAYFLOW_HOME });
    stops.unshift(redis.stop);
    redisUrl = redis.url;
    say(`  redis      ${redis.url}`);
  }

  const chainEnv: Record<string, string> = {};
  let devChain = false;
  if (!process.env.CHAINS && !process.env.CHAINS_FILE) {
    devChain = true;
    const chain = await startDevChain({ port: chainPort, blockTime, dir: path.join(PAYFLOW_HOME, 'chain') });
    stops.unshift(chain.stop);
    const holders = devAccounts(10).map((a) => a.address);
    const usdc = await deployDevToken(chain.rpcUrl, holders);
    // Settlement's gas tank pays the gas of token sweeps: give it 1,000 ETH from dev account 0.
    const gasTank = new Wallet(process.env.GAS_TANK_PRIVATE_KEY || secrets.gasTankPrivateKey);
    await rpcCall(chain.rpcUrl, 'eth_sendTransaction', [{ from: holders[0], to: gasTank.address, value: `0x${(1000n * 10n ** 18n).toString(16)}` }]);
    const chainsFile = path.join(PAYFLOW_HOME, 'chains.json');
    writeFileSync(
      chainsFile,
      JSON.stringify([
        {
          chain_id: chain.chainId,
          name: 'PayFlow dev chain',
          rpc_url: chain.rpcUrl,
          confirmations: Number(process.env.DEV_CONFIRMATIONS ?? 2),
          block_time: blockTime,
          tokens: [{ symbol: usdc.symbol, address: usdc.address, decimals: usdc.decimals }],
        },
      ], null, 2),
    );
    chainEnv.CHAINS_FILE = chainsFile;
    say(`  dev chain  ${chain.rpcUrl} (chain id ${chain.chainId}, a block every ${blockTime}s, USDC at ${usdc.address})`);
  }

  // The dev chain is new on every start: a database that follows an older dev chain is reset, never mixed.
  const db = createDb(databaseUrl, 2, 'payflow-start');
  try {
    if (embeddedDb && devChain) {
      const stale = await db.schema.hasTable('chain_cursors').then((has) => (has ? db('chain_cursors').count<{ count: string }[]>('* as count') : [{ count: '0' }]));
      if (Number(stale[0].count) > 0) {
        await db.destroy();
        await resetDatabase(databaseUrl);
        say('  database   reset: the dev chain keeps no state between runs, so neither do payments');
      }
    }
  } finally {
    await db.destroy().catch(() => {});
  }
  const db2 = createDb(databaseUrl, 2, 'payflow-start');
  await migrateLatest(db2);
  const known = await db2('api_keys').where({ key_hash: hashApiKey(secrets.demoApiKey) }).first();
  if (!known) {
    await createMerchant(db2, { name: 'Demo Shop', settlementAddress: devAccounts(10)[9].address, mode: 'test', apiKey: secrets.demoApiKey });
  }
  await db2.destroy();

  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...chainEnv,
    NODE_ENV: process.env.NODE_ENV ?? 'development',
    DATABASE_URL: databaseUrl,
    REDIS_URL: redisUrl,
    ADMIN_TOKEN: adminToken,
    JWT_SECRET: process.env.JWT_SECRET || secrets.jwtSecret,
    WEBHOOK_SECRETS_KEY: process.env.WEBHOOK_SECRETS_KEY || secrets.webhookSecretsKey,
    HD_MNEMONIC: process.env.HD_MNEMONIC || secrets.hdMnemonic,
    GAS_TANK_PRIVATE_KEY: process.env.GAS_TANK_PRIVATE_KEY || secrets.gasTankPrivateKey,
    PORT: String(apiPort),
    ALLOW_PRIVATE_WEBHOOK_URLS: process.env.ALLOW_PRIVATE_WEBHOOK_URLS ?? 'true',
    // Another program on 9091 must not stop the local worker: take the first free port from there.
    ...(process.env.WORKER_METRICS_PORT || process.env.WORKER_METRICS_PORT_RANGE ? {} : { WORKER_METRICS_PORT_RANGE: '9091-9190' }),
  };
  for (const [name, entry] of [['api', 'api/main.ts'], ['worker', 'workers/main.ts']] as const) {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, entry)], { env, stdio: 'inherit', cwd: repoRoot });
    children.push(child);
    child.on('exit', (code, signal) => {
      if (!shuttingDown) {
        process.stderr.write(`payflow: ${name} process exited (${signal ?? code}); stopping\n`);
        void shutdown(1);
      }
    });
  }
  await waitForHealth(`http://127.0.0.1:${apiPort}/health`);

  const base = `http://localhost:${apiPort}`;
  say('');
  say('PayFlow is running.');
  say(`  API          ${base}/api/v1`);
  say(`  Bull Board   ${base}/admin/queues   (browser login: ${process.env.BULL_BOARD_USER || 'admin'} / ${process.env.BULL_BOARD_PASSWORD || adminToken})`);
  say(`  metrics      ${base}/metrics, and the worker's on the first free port from 9091   (Bearer ${process.env.METRICS_TOKEN || adminToken})`);
  say(`  readiness    ${base}/ready`);
  say(`  admin token  ${adminToken}`);
  say(`  demo API key ${secrets.demoApiKey}   (merchant "Demo Shop", settles to dev account 9)`);
  say(`  gas tank     ${new Wallet(process.env.GAS_TANK_PRIVATE_KEY || secrets.gasTankPrivateKey).address}   (pays token settlement gas)`);
  say('');
  say('Create a payment:');
  say(`  curl -s -X POST ${base}/api/v1/payments -H 'Authorization: Bearer ${secrets.demoApiKey}' -H 'Content-Type: application/json' -d '{"amount":"0.05","currency":"ETH"}'`);
  say('Pay it from a dev account and watch it reach "confirmed":');
  say('  npm run demo:pay -- <payment id>');
  say('Ctrl-C stops everything.');
}

async function waitForHealth(url: string) {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`API did not answer ${url} within 60 s`);
}

let shuttingDown = false;
async function shutdown(code: number) {
  if (shuttingDown) return;
  shuttingDown = true;
  say('\nstopping PayFlow…');
  await Promise.all(
    children.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
          c.once('exit', () => resolve());
          c.kill('SIGTERM');
          setTimeout(() => c.kill('SIGKILL'), 30_000).unref();
        }),
    ),
  );
  for (const stop of stops) await stop().catch(() => {});
  say('stopped.');
  process.exit(code);
}

process.on('SIGINT', () => void shutdown(0));
process.on('SIGTERM', () => void shutdown(0));
main().catch(async (err) => {
  process.stderr.write(`payflow: ${(err as Error).message.split('\n')[0]}\n`);
  await shutdown(1);
});
