import { constants as zlib } from 'node:zlib';
import type Koa from 'koa';
import cors from '@koa/cors';
import compress from 'koa-compress';
import conditional from 'koa-conditional-get';
import etag from '@koa/etag';
import helmet from 'koa-helmet';

/**
 * Security headers (helmet): HSTS, nosniff, frame and referrer policies everywhere. JSON answers and the /docs
 * page also get a Content-Security-Policy that allows nothing they do not use (JSON: nothing at all; /docs: its
 * inline styles). Other HTML pages (checkout, Bull Board) set their own CSP.
 */
export function securityHeaders(): Koa.Middleware {
  const base = { crossOriginResourcePolicy: { policy: 'cross-origin' as const } };
  const json = helmet({ ...base, contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } } });
  const docs = helmet({
    ...base,
    contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], styleSrc: ["'unsafe-inline'"], frameAncestors: ["'none'"] } },
  });
  const other = helmet({ ...base, contentSecurityPolicy: false });
  return (ctx, next) => {
    if (ctx.path === '/docs') return docs(ctx, next);
    if (ctx.path.startsWith('/api/') || ctx.path.startsWith('/admin/v1') || ctx.path === '/openapi.json') return json(ctx, next);
    return other(ctx, next);
  };
}

/**
 * CORS for browsers calling the API directly (CORS_ORIGINS). Only listed origins are echoed back; `*` allows any.
 * Credentials are never allowed: the API authenticates with a bearer token, not cookies.
 */
export function corsFor(origins: string[]): Koa.Middleware {
  const any = origins.includes('*');
  return cors({
    origin: (ctx) => {
      const origin = ctx.get('origin');
      if (any) return '*';
      return origins.includes(origin) ? origin : '';
    },
    allowMethods: ['GET', 'HEAD', 'POST', 'PATCH', 'DELETE'],
    allowHeaders: ['Authorization', 'Content-Type', 'Idempotency-Key', 'X-Request-Id'],
    exposeHeaders: ['X-Request-Id', 'Idempotent-Replayed', 'Retry-After', 'X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset', 'ETag'],
    maxAge: 600,
  });
}

/**
 * gzip or brotli (by Accept-Encoding) for bodies over 1 kB: lists of payments shrink ~10×. Brotli at quality 4,
 * not the default 11, which costs far more CPU than it saves bandwidth on a JSON API.
 */
export function compressJson(): Koa.Middleware {
  return compress({
    threshold: 1024,
    br: { params: { [zlib.BROTLI_PARAM_QUALITY]: 4 } },
    gzip: { level: 6 },
    deflate: false,
  });
}

/**
 * ETag on successful GETs of the JSON API and `304 Not Modified` for a matching If-None-Match, so a client polling
 * an unchanged payment gets no body. Only for /api, /admin/v1 and /openapi.json: HTML pages (checkout, Bull Board)
 * manage their own caching.
 */
export function conditionalGet(): Koa.Middleware {
  const fresh = conditional();
  const tag = etag();
  return (ctx, next) => {
    // Only reads: hashing a POST's answer for an ETag no client will send back cost 5 % of a payment creation.
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return next();
    if (!(ctx.path.startsWith('/api/') || ctx.path.startsWith('/admin/v1/') || ctx.path === '/openapi.json')) return next();
    return fresh(ctx, () => tag(ctx, next));
  };
}

/**
 * Turns a JSON body (a plain object or array) into its string once, on the way out. Koa would do it at the very
 * end, but koa-compress reads the response's length first, for every response, and Koa computes that length
 * of an object body by serialising it too; the ETag of a read hashed a third serialisation. Mount it inside
 * compression and conditional GET, outside the error handler (error bodies are JSON too).
 */
export function serializeJson(): Koa.Middleware {
  return async (ctx, next) => {
    await next();
    const body: unknown = ctx.body;
    if (body === null || typeof body !== 'object') return;
    const proto = Object.getPrototypeOf(body);
    if (!(Array.isArray(body) || proto === Object.prototype || proto === null)) return; // Buffer, stream, Blob, …
    if (!/\bjson\b/i.test(ctx.response.type)) return;
    ctx.body = JSON.stringify(body); // the type stays JSON: Koa sets one for a string only when there is none
  };
}
