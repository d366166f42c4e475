import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { devAccounts, startDevChain } from '../../scripts/devstack/chain.js';
import { freePort } from '../../scripts/devstack/ports.js';
import { startEmbeddedPostgres } from '../../scripts/devstack/postgres.js';
import { startRedis } from '../../scripts/devstack/redis.js';
import { deployDevToken } from '../../scripts/devstack/token.js';
import { TEST_STACK_KEY, type TestStackSlot } from './hooks.js';

export interface TestStack {
  databaseUrl: string;
  redisUrl: string;
  rpcUrl: string;
  chainId: number;
  /** DevUSDC (6 decimals); each of the first 10 dev accounts holds 1,000,000 USDC. */
  usdcAddress: string;
  /** Fresh temp dir holding the Postgres cluster, redis dir and hardhat config; removed by stop(). */
  dir: string;
  pids: { postgres?: number; redis: number; chain: number };
  stop(): Promise<void>;
}

export interface TestStackOptions {
  /** Seconds between blocks; default 0 = automine (tests can also call evm_mine). */
  blockTime?: number;
}

/** PAYFLOW_STACK_LOG=1 prints every child's output to stderr, for debugging CI. */
function logger(name: string): ((line: string) => void) | undefined {
  if (!process.env.PAYFLOW_STACK_LOG) return undefined;
  return (line) => process.stderr.write(`[${name}] ${line}\n`);
}

async function distinctFreePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

/**
 * Starts Postgres, Redis and a hardhat chain on free ports in a fresh temp dir
 * and deploys DevUSDC to the first 10 dev accounts. Each call is an
 * independent stack; most tests want the shared getTestStack() instead.
 */
export async function startTestStack(opts: TestStackOptions = {}): Promise<TestStack> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'payflow-test-'));
  // mkdtemp gives 0700, but as root Postgres runs as user 'postgres' and must
  // be able to enter the dir to reach its cluster.
  fs.chmodSync(dir, 0o755);
  const removeDir = () => {
    if (process.env.PAYFLOW_KEEP_TEST_STACK) return;
    try {
      fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // best effort: it is under the OS temp dir
    }
  };

  const [pgPort, redisPort, chainPort] = await distinctFreePorts(3);
  const settled = await Promise.allSettled([
    startEmbeddedPostgres({
      dataDir: path.join(dir, 'pg'),
      port: pgPort,
      onLog: logger('pg'),
      // Throwaway cluster: durability only costs time here.
      postgresFlags: ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'],
    }),
    startRedis({ port: redisPort, dir: path.join(dir, 'redis'), persist: false, onLog: logger('redis') }),
    startDevChain({ port: chainPort, blockTime: opts.blockTime ?? 0, dir: path.join(dir, 'chain'), onLog: logger('chain') }),
  ]);

  const running = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const stopAll = async () => {
    await Promise.allSettled(running.map((s) => s.stop()));
    removeDir();
  };
  const failures = settled.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error] : []));
  if (failures.length > 0) {
    await stopAll();
    throw failures.length === 1 ? failures[0] : new AggregateError(failures, failures.map((e) => e.message).join('\n---\n'));
  }
  const [pg, redis, chain] = settled.map((r) => (r as PromiseFulfilledResult<unknown>).value) as [
    Awaited<ReturnType<typeof startEmbeddedPostgres>>,
    Awaited<ReturnType<typeof startRedis>>,
    Awaited<ReturnType<typeof startDevChain>>,
  ];

  let usdcAddress: string;
  try {
    const holders = devAccounts(10).map((w) => w.address);
    ({ address: usdcAddress } = await deployDevToken(chain.rpcUrl, holders));
  } catch (err) {
    await stopAll();
    throw err;
  }

  // The children themselves are signalled on exit by the devstack modules;
  // this only cleans the temp dir if nobody called stop() (e.g. the mocha root
  // hook is not registered). Registered after them, so it runs after the kills.
  let stopped = false;
  const onExit = () => {
    if (!stopped) removeDir();
  };
  process.on('exit', onExit);

  let stopping: Promise<void> | undefined;
  return {
    databaseUrl: pg.url,
    redisUrl: redis.url,
    rpcUrl: chain.rpcUrl,
    chainId: chain.chainId,
    usdcAddress,
    dir,
    pids: { postgres: pg.pid, redis: redis.pid, chain: chain.pid },
    stop: () =>
      (stopping ??= (async () => {
        stopped = true;
        process.removeListener('exit', onExit);
        await stopAll();
      })()),
  };
}

type GlobalWithStack = typeof globalThis & { [TEST_STACK_KEY]?: TestStackSlot & { stack: Promise<TestStack> } };

/**
 * The stack shared by all integration tests of this mocha process: started on
 * first use, stopped by the root afterAll hook in test/support/hooks.ts.
 * Kept on globalThis (not a module variable) so the hook can find it without
 * importing this module, and so a second copy of this module would still
 * share it.
 */
export function getTestStack(): Promise<TestStack> {
  const g = globalThis as GlobalWithStack;
  let slot = g[TEST_STACK_KEY];
  if (!slot) {
    const stack = startTestStack();
    // A failed start is reported to every caller; nothing to stop then.
    stack.catch(() => {});
    slot = {
      stack,
      stop: async () => {
        if (g[TEST_STACK_KEY] === slot) delete g[TEST_STACK_KEY];
        const started = await stack.catch(() => undefined);
        await started?.stop();
      },
    };
    g[TEST_STACK_KEY] = slot;
  }
  return slot.stack;
}

/** Stops the shared stack if it was started; the next getTestStack() starts a new one. */
export async function stopTestStack(): Promise<void> {
  await (globalThis as GlobalWithStack)[TEST_STACK_KEY]?.stop();
}

/** A new, empty database on the stack's Postgres (one per test file or gateway, so none sees another's rows); its URL. */
export async function createTestDatabase(stack: Pick<TestStack, 'databaseUrl'>, name: string): Promise<string> {
  const admin = new pg.Client({ connectionString: stack.databaseUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  return stack.databaseUrl.replace(/\/[^/]+$/, `/${name}`);
}
