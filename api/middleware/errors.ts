import type Koa from 'koa';
import { ApiError } from '../../shared/errors.js';

/**
 * The one place errors become responses: `{"error":{"type","code","message","param"?}}`. ApiErrors and
 * http-errors with `expose` (body parser, koa-jwt) keep their status; anything else is a bug, logged with its
 * stack and answered 500 with no details.
 */
export function errorHandler(): Koa.Middleware {
  return async (ctx, next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        throw new ApiError(404, 'not_found_error', 'route_not_found', `No route ${ctx.method} ${ctx.path}`);
      }
      // A router's allowedMethods() answers a known path with another method by status alone (Allow header set).
      if ((ctx.status === 405 || ctx.status === 501) && ctx.body === undefined) {
        throw new ApiError(ctx.status, 'invalid_request_error', 'method_not_allowed', `${ctx.method} is not allowed on ${ctx.path}`);
      }
    } catch (err) {
      const e = err as { status?: number; statusCode?: number; expose?: boolean; message?: string; code?: string; headers?: Record<string, string> };
      if (err instanceof ApiError) {
        ctx.status = err.status;
        ctx.body = errorBody(err);
        return;
      }
      const status = e.status ?? e.statusCode;
      if (status && status >= 400 && status < 500 && e.expose !== false) {
        ctx.status = status;
        if (e.headers) ctx.set(e.headers);
        ctx.body = { error: { type: typeForStatus(status), code: codeForStatus(status), message: e.message ?? 'Bad request' } };
        return;
      }
      // Postgres class 22 (data exception: a NUL byte, an out-of-range number) can only come from input that
      // validation let through; it is the caller's input, not our fault.
      if (typeof e.code === 'string' && /^22[0-9A-Z]{3}$/.test(e.code)) {
        ctx.status = 400;
        ctx.body = { error: { type: 'invalid_request_error', code: 'parameter_invalid', message: 'A parameter holds a value that cannot be stored or compared' } };
        return;
      }
      if (isDatabaseUnavailable(err)) {
        ctx.status = 503;
        ctx.set('Retry-After', '5');
        ctx.body = { error: { type: 'service_unavailable_error', code: 'database_unavailable', message: 'Database temporarily unavailable; retry shortly' } };
        return;
      }
      ctx.state.log?.error({ err }, 'unhandled error');
      ctx.status = 500;
      ctx.body = { error: { type: 'api_error', code: 'internal_error', message: 'Internal server error' } };
    }
  };
}

export function errorBody(err: ApiError) {
  return { error: { type: err.type, code: err.code, message: err.message, ...(err.param ? { param: err.param } : {}), ...err.extra } };
}

function typeForStatus(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'rate_limit_error';
  return 'invalid_request_error';
}

function codeForStatus(status: number): string {
  return (
    { 400: 'bad_request', 401: 'unauthorized', 403: 'forbidden', 404: 'resource_missing', 413: 'body_too_large', 415: 'unsupported_media_type', 429: 'rate_limited' } as Record<number, string>
  )[status] ?? 'bad_request';
}

function isDatabaseUnavailable(err: unknown): boolean {
  const e = err as { code?: string; name?: string; message?: string };
  return (
    e.name === 'KnexTimeoutError' ||
    ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', '57P01', '57P03', '08006', '08001'].includes(e.code ?? '') ||
    /Connection terminated|connect ECONNREFUSED/.test(e.message ?? '')
  );
}
