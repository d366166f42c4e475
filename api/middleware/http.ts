import { constants as zlib } from 'node:zlib';
import type Koa from 'koa';
import cors from '@koa/cors';
import compress from 'koa-compress';
import conditional from 'koa-conditional-get';
import etag from '@koa/etag';
import helmet from 'koa-helmet';
import { jsonOf } from '../../shared/serializedJson.js';

/** The security headers of JSON answers (securityHeaders, below). */
const JSON_SECURITY_HEADERS = Object.entries({
  'Content-Security-Policy': "default-src 'none'; frame-ancestors 'none'",
  'X-Frame-Options': 'DENY',
  'X-Content-Type-Options': 'nosniff',
  'Strict-Transport-Security': 'max-age=31536000; includeSubDomains',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Resource-Policy': 'cross-origin',
});

/**
 * Security headers on every response. JSON answers (the API, the admin API, /openapi.json) get the set that
 * matters for a JSON API (OWASP's REST cheat sheet), fixed at start-up and set in one pass: a Content-Security-Policy
 * that allows nothing, no framing, no sniffing, HSTS, no referrer, and a cross-origin resource policy that lets
 * browsers on merchants' sites read them. helmet's document-only headers (Origin-Agent-Cluster, COOP,
 * X-DNS-Prefetch-Control, X-Download-Options, X-Permitted-Cross-Domain-Policies, X-XSS-Protection) say nothing to
 * a JSON reader, and running helmet's dozen middleware per request cost CPU on the hottest routes. HTML pages get
 * helmet in full: the /docs page a CSP that allows its inline styles, others (checkout, Bull Board) set their own CSP.
 */
export function securityHeaders(): Koa.Middleware {
  const base = { crossOriginResourcePolicy: { policy: 'cross-origin' as const } };
  const docs = helmet({
    ...base,
    contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], styleSrc: ["'unsafe-inline'"], frameAncestors: ["'none'"] } },
  });
  const other = helmet({ ...base, contentSecurityPolicy: false });
  return (ctx, next) => {
    if (ctx.path.startsWith('/api/') || ctx.path.startsWith('/admin/v1') || ctx.path === '/openapi.json') {
      for (const [name, value] of JSON_SECURITY_HEADERS) ctx.res.setHeader(name, value);
      return next();
    }
    return ctx.path === '/docs' ? docs(ctx, next) : other(ctx, next);
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
    ctx.body = jsonOf(body); // the type stays JSON: Koa sets one for a string only when there is none
  };
}
