import type Router from '@koa/router';
import { createRouter } from './router.js';
import type { Config } from '../../shared/config.js';
import { migrationsCurrent, type Db } from '../../shared/db.js';
import { createRpcClient, hexToNumber, type RpcClient } from '../../shared/chain/rpcClient.js';
import type { RedisConnection } from '../../shared/queues/redis.js';

const CHECK_TIMEOUT_MS = 3000;

type Check = { ok: true } | { ok: false; error: string };

async function check(run: () => Promise<unknown>): Promise<Check> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      run(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
      }),
    ]);
    return { ok: true };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  } finally {
    clearTimeout(timer);
  }
}

const CONNECTING = new Set(['connecting', 'connect']);
const SETTLED = ['ready', 'close', 'end'] as const;
/** One wait per connection attempt, however many /ready requests arrive meanwhile (each would add listeners). */
const attempts = new WeakMap<RedisConnection, Promise<void>>();

/**
 * PING, after the connection attempt in progress (if any) settles. The API's producer connection does not queue
 * commands (`enableOfflineQueue: false`, shared/queues/redis.ts), so a PING sent while the connection is still
 * being made — in the first moments after start, when an orchestrator already probes /ready — would fail although
 * Redis is fine. The wait is bounded below the check's own timeout, so the PING still answers for the outcome.
 */
export async function pingRedis(redis: RedisConnection, waitMs = CHECK_TIMEOUT_MS - 500): Promise<void> {
  if (CONNECTING.has(redis.status)) await attemptSettled(redis, waitMs);
  if ((await redis.ping()) !== 'PONG') throw new Error('unexpected PING reply');
}

function attemptSettled(redis: RedisConnection, waitMs: number): Promise<void> {
  let settled = attempts.get(redis);
  if (!settled) {
    settled = new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        for (const event of SETTLED) redis.off(event, done);
        attempts.delete(redis);
        resolve();
      };
      const timer = setTimeout(done, waitMs);
      for (const event of SETTLED) redis.once(event, done);
    });
    attempts.set(redis, settled);
  }
  return settled;
}

/**
 * GET /ready: readiness for a load balancer or orchestrator. 200 only when Postgres, Redis and every configured
 * chain's RPC answer and the schema is at the newest migration; otherwise 503 naming what failed. All checks run
 * in parallel, each bounded by 3 s. Public like /health, and says nothing secret (no URLs, no hosts).
 */
export function readyRoutes(deps: { config: Config; db: Db; redis: RedisConnection; isStopping?: () => boolean }): Router {
  const rpcs = new Map<number, RpcClient>(deps.config.chains.map((c) => [c.chainId, createRpcClient(c.rpcUrl, { timeoutMs: CHECK_TIMEOUT_MS })]));
  const router = createRouter();
  router.get('/ready', async (ctx) => {
    const chainChecks = deps.config.chains.map(async (chain) => {
      const result = await check(async () => {
        const id = hexToNumber(await rpcs.get(chain.chainId)!.call('eth_chainId', []));
        if (id !== chain.chainId) throw new Error(`node serves chain ${id}, configured ${chain.chainId}`);
      });
      return [String(chain.chainId), result] as const;
    });
    const [postgres, redis, migrations, chains] = await Promise.all([
      check(() => deps.db.raw('select 1')),
      check(() => pingRedis(deps.redis)),
      check(async () => {
        if (!(await migrationsCurrent(deps.db))) throw new Error('pending migrations: run the release phase (npm run migrate)');
      }),
      Promise.all(chainChecks).then((entries) => Object.fromEntries(entries)),
    ]);
    const failed = [
      ...(postgres.ok ? [] : ['postgres']),
      ...(redis.ok ? [] : ['redis']),
      ...(migrations.ok ? [] : ['migrations']),
      ...Object.entries(chains).filter(([, c]) => !c.ok).map(([id]) => `chain:${id}`),
    ];
    // A draining process tells the load balancer to stop sending, while it still answers what is in flight.
    if (deps.isStopping?.()) failed.push('shutting_down');
    ctx.status = failed.length === 0 ? 200 : 503;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { status: failed.length === 0 ? 'ready' : 'not_ready', failed, checks: { postgres, redis, migrations, chains } };
  });
  return router;
}
