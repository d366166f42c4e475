import type Koa from 'koa';
import ratelimit from 'koa-ratelimit';
import type { Logger } from '../../shared/logger.js';
import type { RedisConnection } from '../../shared/queues/redis.js';
import { ApiError } from '../../shared/errors.js';
import { createRateLimitStore, type RateLimitStore } from './rateLimitStore.js';
import type { MerchantPrincipal } from '../auth/merchantAuth.js';

export interface RateLimitOptions {
  redis: RedisConnection;
  /** Redis key namespace; carries QUEUE_PREFIX so several deployments can share one Redis. */
  namespace: string;
  windowMs: number;
  log: Logger;
}

/**
 * A sliding-window limit (koa-ratelimit) shared by every API process through Redis, counted locally and settled
 * in batches (rateLimitStore.ts). Answers 429 with `Retry-After` and `X-RateLimit-Limit/Remaining/Reset`
 * (Reset = Unix seconds when a slot frees up).
 *
 * Fails open: with Redis unreachable each process goes on limiting by its own counts, and any other error of the
 * limiter lets the request through (logged), because refusing every merchant because our limiter's store is down
 * would turn a Redis blip into an outage.
 */
const stores = new WeakMap<RedisConnection, RateLimitStore>();
/** One store (and one flush timer) per Redis connection, shared by every limiter on it. */
function storeFor(redis: RedisConnection, log: Logger): RateLimitStore {
  let store = stores.get(redis);
  if (!store) stores.set(redis, (store = createRateLimitStore(redis, log)));
  return store;
}

function limiter(opts: RateLimitOptions & { name: string; max: number; id: (ctx: Koa.Context) => string | false }): Koa.Middleware {
  const limit = ratelimit({
    driver: 'redis',
    // koa-ratelimit's limiter with our store in place of its per-request Redis script (rateLimitStore.ts).
    db: storeFor(opts.redis, opts.log) as never,
    namespace: `${opts.namespace}:ratelimit:${opts.name}`,
    duration: opts.windowMs,
    max: opts.max,
    id: opts.id,
    throw: false,
  } as never) as Koa.Middleware;
  return async (ctx, next) => {
    let downstream = false;
    try {
      await limit(ctx, async () => {
        downstream = true;
        await next();
      });
    } catch (err) {
      if (downstream) throw err;
      opts.log.warn({ err: (err as Error).message, limiter: opts.name }, 'rate limiter unavailable; request allowed');
      return next();
    }
    if (!downstream && ctx.status === 429) {
      const retryAfter = Math.max(1, Number(ctx.response.get('Retry-After')) || 1);
      ctx.set('Retry-After', String(retryAfter));
      throw new ApiError(429, 'rate_limit_error', 'rate_limited', `Too many requests; retry in ${retryAfter} s`);
    }
  };
}

/** Per client IP, before authentication: bounds key guessing and anonymous load. */
export function ipRateLimit(opts: RateLimitOptions & { max: number }): Koa.Middleware {
  return limiter({ ...opts, name: 'ip', id: (ctx) => ctx.ip || 'unknown' });
}

/**
 * Per API key (a JWT counts against the key that issued it), with separate budgets for reads (GET/HEAD) and
 * writes, so a merchant polling payments cannot starve its own checkout creating them. Mount after authentication.
 */
export function merchantRateLimit(opts: RateLimitOptions & { read: number; write: number }): Koa.Middleware {
  const keyOf = (ctx: Koa.Context) => (ctx.state.merchant as MerchantPrincipal | undefined)?.keyId ?? false;
  const isRead = (ctx: Koa.Context) => ctx.method === 'GET' || ctx.method === 'HEAD' || ctx.method === 'OPTIONS';
  const reads = limiter({ ...opts, name: 'read', max: opts.read, id: keyOf });
  const writes = limiter({ ...opts, name: 'write', max: opts.write, id: keyOf });
  return (ctx, next) => (isRead(ctx) ? reads(ctx, next) : writes(ctx, next));
}
