import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createDb, migrateLatest, type Db } from '../../shared/db.js';
import { freePort } from '../../scripts/devstack/ports.js';
import { Wallet } from 'ethers';
import { devAccounts, rpcCall, startDevChain } from '../../scripts/devstack/chain.js';
import { deployDevToken } from '../../scripts/devstack/token.js';
import { createTestDatabase, getTestStack, type TestStack } from './stack.js';
import { procfileNodeArgs } from './procfile.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface GatewayOptions {
  workers?: number;
  confirmations?: number | 'safe' | 'finalized';
  /** Extra env for every process. */
  env?: Record<string, string>;
  /** Extra chains (beyond the gateway's dev chain), as CHAINS entries. */
  extraChains?: Record<string, unknown>[];
  /** Seconds between blocks on the gateway's dev chain; 0 (default) mines a block per transaction. */
  blockTime?: number;
  /** Fields merged into the dev chain's CHAINS entry (e.g. max_block_range). */
  chainOverrides?: Record<string, unknown>;
  /** Lets a test put something (a fault proxy) between the processes and the dev chain. */
  wrapRpc?: (rpcUrl: string) => Promise<string>;
  /** Run the compiled build with the Procfile's commands (`node … dist/…`) instead of the sources under tsx; build it first. */
  compiled?: boolean;
}

export interface Gateway {
  stack: TestStack;
  apiUrl: string;
  adminToken: string;
  databaseUrl: string;
  db: Db;
  env: Record<string, string>;
  workers: ChildProcess[];
  api: ChildProcess;
  startWorker(extraEnv?: Record<string, string>): Promise<ChildProcess>;
  /**
   * One more API process on the same database and Redis, as a second web dyno; ready once its port accepts
   * connections (HTTP or, with TLS_* in extraEnv, HTTPS). Stopped with the gateway.
   */
  startApi(extraEnv?: Record<string, string>): Promise<{ port: number; child: ChildProcess; output(): string }>;
  stop(): Promise<void>;
  /** stdout+stderr of every process, for failure messages. */
  logs(): string;
}

/**
 * A real PayFlow: its own database on the test Postgres, its own queue prefix on the test Redis, the API and
 * worker processes started as the Procfile would. Tests talk to it over HTTP and watch the database.
 */
export async function startGateway(opts: GatewayOptions = {}): Promise<Gateway> {
  const shared = await getTestStack();
  const dbName = `pf_${randomBytes(5).toString('hex')}`;
  // Each gateway gets its own dev chain (≈ 1 s): reorgs, chain time travel and nonces of one test file can then
  // never leak into another. Postgres and Redis are shared, with a database and a queue prefix per gateway.
  const devChain = await startDevChain({ port: await freePort(), blockTime: opts.blockTime ?? 0, dir: path.join(shared.dir, `${dbName}-chain`) });
  const usdc = await deployDevToken(devChain.rpcUrl, devAccounts(10).map((a) => a.address));
  const stack: TestStack = { ...shared, rpcUrl: devChain.rpcUrl, chainId: devChain.chainId, usdcAddress: usdc.address };
  // Settlement's gas tank (GAS_TANK_PRIVATE_KEY), given 100 ETH by dev account 0: token sweeps draw their gas from it.
  const gasTank = Wallet.createRandom();
  await rpcCall(devChain.rpcUrl, 'eth_sendTransaction', [{ from: devAccounts(1)[0].address, to: gasTank.address, value: `0x${(100n * 10n ** 18n).toString(16)}` }]);
  const databaseUrl = await createTestDatabase(stack, dbName);
  const db = createDb(databaseUrl, 4, 'payflow-test');
  await migrateLatest(db);

  const chainsFile = path.join(stack.dir, `${dbName}.chains.json`);
  writeFileSync(
    chainsFile,
    JSON.stringify([
      {
        chain_id: stack.chainId,
        name: 'test chain',
        rpc_url: opts.wrapRpc ? await opts.wrapRpc(stack.rpcUrl) : stack.rpcUrl,
        confirmations: opts.confirmations ?? 2,
        block_time: 0.4,
        tokens: [{ symbol: 'USDC', address: stack.usdcAddress, decimals: 6 }],
        ...opts.chainOverrides,
      },
      ...(opts.extraChains ?? []),
    ]),
  );
  const port = await freePort();
  const adminToken = `adm_${randomBytes(16).toString('hex')}`;
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    NODE_ENV: 'test',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
    LOG_PRETTY: 'false',
    PORT: String(port),
    DATABASE_URL: databaseUrl,
    DATABASE_POOL_MAX: '5',
    REDIS_URL: stack.redisUrl,
    QUEUE_PREFIX: dbName,
    ADMIN_TOKEN: adminToken,
    JWT_SECRET: randomBytes(32).toString('hex'),
    WEBHOOK_SECRETS_KEY: randomBytes(32).toString('hex'),
    HD_MNEMONIC: 'abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about',
    CHAINS_FILE: chainsFile,
    EXPIRY_SWEEP_INTERVAL_MS: '300',
    GAS_TANK_PRIVATE_KEY: gasTank.privateKey,
    SETTLEMENT_INTERVAL_MS: '300',
    OUTBOX_POLL_INTERVAL_MS: '200',
    WEBHOOK_TIMEOUT_MS: '3000',
    WEBHOOK_RETRY_SCHEDULE: '0.5,1,2',
    ALLOW_PRIVATE_WEBHOOK_URLS: 'true',
    WORKER_METRICS_PORT: '0', // any free port: several workers (and test runs) share this host
    // Small: each test gateway's worker derives it (CPU), and tests see both the pooled and the derive-here path.
    DEPOSIT_ADDRESS_POOL_SIZE: '20',
    ...opts.env,
  };
  let output = '';
  const launch = (entry: string, extraEnv: Record<string, string> = {}) => {
    const args = opts.compiled ? procfileNodeArgs(entry === 'api/main.ts' ? 'web' : 'worker') : ['--import', 'tsx', path.join(repoRoot, entry)];
    const child = spawn(process.execPath, args, {
      env: { ...env, ...extraEnv },
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-200_000);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    children.add(child);
    child.on('exit', () => children.delete(child));
    return child;
  };

  const api = launch('api/main.ts');
  const extraApis: ChildProcess[] = [];
  const workers: ChildProcess[] = [];
  for (let i = 0; i < (opts.workers ?? 1); i++) workers.push(launch('workers/main.ts'));
  const apiUrl = `http://127.0.0.1:${port}`;
  await waitFor(async () => (await fetch(`${apiUrl}/health`)).ok, 30_000, () => `API did not start:\n${output}`);
  // Payments are refused until a worker has created the chains' cursors (see createPayment).
  const chainCount = 1 + (opts.extraChains?.length ?? 0);
  if ((opts.workers ?? 1) > 0) {
    await waitFor(async () => Number((await db('chain_cursors').count('* as n').first())!.n) >= chainCount, 30_000, () => `worker did not start:\n${output}`);
  }

  return {
    stack,
    apiUrl,
    adminToken,
    databaseUrl,
    db,
    env,
    workers,
    api,
    async startWorker(extraEnv) {
      const w = launch('workers/main.ts', extraEnv);
      workers.push(w);
      return w;
    },
    async startApi(extraEnv = {}) {
      const extraPort = await freePort();
      const child = launch('api/main.ts', { PORT: String(extraPort), ...extraEnv });
      let own = '';
      child.stdout!.on('data', (c) => (own += c));
      child.stderr!.on('data', (c) => (own += c));
      extraApis.push(child);
      const accepts = () =>
        new Promise<boolean>((resolve) => {
          const socket = net.connect(extraPort, '127.0.0.1');
          socket.once('connect', () => (socket.destroy(), resolve(true)));
          socket.once('error', () => resolve(false));
        });
      await waitFor(accepts, 30_000, () => `API did not start:\n${own}`);
      return { port: extraPort, child, output: () => own };
    },
    async stop() {
      await Promise.all([api, ...workers, ...extraApis].map((c) => stopChild(c)));
      await db.destroy();
      await devChain.stop();
    },
    logs: () => output,
  };
}

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

export function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill(signal);
  });
}

/**
 * Waits, if need be, until at least `marginMs` of the rate limiter's current bucket is left. Its window slides over
 * fixed buckets (api/middleware/rateLimitStore.ts): just past a bucket's edge the previous bucket's count is
 * weighted by a little under 1 and rounds down, freeing one request, so a test that spends a budget and then expects
 * 429 must not meet an edge in between (a CI run did).
 */
export async function clearOfRateLimitEdge(windowMs = 60_000, marginMs = 15_000): Promise<void> {
  const leftMs = windowMs - (Date.now() % windowMs);
  if (leftMs < marginMs) await new Promise((r) => setTimeout(r, leftMs + 50));
}

export async function waitFor<T>(
  check: () => Promise<T | false | undefined | null>,
  timeoutMs = 20_000,
  describe?: () => string,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const result = await check();
      if (result) return result;
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms${lastError ? ` (last error: ${(lastError as Error).message})` : ''}${describe ? `\n${describe()}` : ''}`);
}

export interface HttpResult<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

/** JSON over HTTP to the gateway. */
export async function call<T = any>(
  gw: { apiUrl: string },
  method: string,
  route: string,
  opts: { auth?: string; body?: unknown; headers?: Record<string, string>; rawBody?: string } = {},
): Promise<HttpResult<T>> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.auth) headers.authorization = `Bearer ${opts.auth}`;
  let body: string | undefined = opts.rawBody;
  if (opts.body !== undefined) {
    headers['content-type'] ??= 'application/json';
    body = JSON.stringify(opts.body);
  }
  const res = await fetch(`${gw.apiUrl}${route}`, { method, headers, body });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON; tests assert on that when it matters
  }
  return { status: res.status, body: parsed as T, headers: res.headers };
}

export async function createTestMerchant(gw: Gateway, name = 'Test Shop', extra: Record<string, unknown> = {}) {
  const res = await call(gw, 'POST', '/admin/v1/merchants', { auth: gw.adminToken, body: { name, ...extra } });
  if (res.status !== 201) throw new Error(`merchant creation failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as { id: string; api_key: string; name: string };
}
