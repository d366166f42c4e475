import { randomUUID } from 'node:crypto';
import type Koa from 'koa';
import type { Logger } from '../../shared/logger.js';

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** Gives every request an id (the caller's X-Request-Id when sane) and a child logger that carries it. */
export function requestContext(log: Logger): Koa.Middleware {
  return async (ctx, next) => {
    const incoming = ctx.get('x-request-id');
    const requestId = REQUEST_ID.test(incoming) ? incoming : randomUUID();
    ctx.state.requestId = requestId;
    // The child logger is made on first use: building one (with its redaction) on every request cost measurable
    // CPU on the hot path, while most requests never log.
    let child: Logger | undefined;
    Object.defineProperty(ctx.state, 'log', { get: () => (child ??= log.child({ requestId })), configurable: true, enumerable: true });
    ctx.set('X-Request-Id', requestId);
    const started = performance.now();
    try {
      await next();
    } finally {
      // ctx.ip honours X-Forwarded-For only with TRUST_PROXY. Headers are logged at debug, with secrets redacted.
      if (log.isLevelEnabled('debug')) {
        const ms = Math.round(performance.now() - started);
        const line = { method: ctx.method, path: ctx.path, status: ctx.status, ms, ip: ctx.ip, protocol: ctx.protocol, httpVersion: ctx.req.httpVersion };
        ctx.state.log.debug({ ...line, headers: ctx.headers }, 'request');
      }
    }
  };
}
