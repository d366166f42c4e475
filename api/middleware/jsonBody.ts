import type Koa from 'koa';
import { bodyParser } from '@koa/bodyparser';
import { ApiError } from '../../shared/errors.js';

export const BODY_LIMIT = '64kb';
const WITH_BODY = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * JSON bodies only: a request with a body must say `application/json` (415 otherwise), bodies over the limit
 * answer 413, malformed JSON 400. Must be mounted after the error handler.
 */
export function jsonBody(): Koa.Middleware {
  const parse = bodyParser({ enableTypes: ['json'], jsonLimit: BODY_LIMIT, encoding: 'utf-8' });
  return async (ctx, next) => {
    // GET, HEAD and OPTIONS bodies are never read (the parser skips them too): reads, the hottest requests, go on.
    if (!WITH_BODY.has(ctx.method)) return next();
    if (ctx.request.length) {
      if (!ctx.is('application/json')) {
        throw new ApiError(415, 'invalid_request_error', 'unsupported_media_type', 'Request body must be application/json');
      }
    }
    try {
      await parse(ctx as never, async () => {});
    } catch (err) {
      const e = err as { status?: number; type?: string };
      if (e.status === 413) throw new ApiError(413, 'invalid_request_error', 'body_too_large', `Request body exceeds ${BODY_LIMIT}`);
      throw new ApiError(400, 'invalid_request_error', 'invalid_json', 'Request body is not valid JSON');
    }
    if (nestingDepth(ctx.request.body) > MAX_DEPTH) {
      throw new ApiError(400, 'invalid_request_error', 'body_too_deep', `Request body is nested deeper than ${MAX_DEPTH} levels`);
    }
    await next();
  };
}

/** No API body needs more; a deeper one (64 kB allows ~30k levels) would only exhaust the stack of recursive code. */
export const MAX_DEPTH = 32;

/** Depth of a parsed JSON value, counted without recursion so the check itself cannot overflow the stack. */
function nestingDepth(value: unknown): number {
  let max = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (node === null || typeof node !== 'object') continue;
    if (depth + 1 > max) max = depth + 1;
    if (max > MAX_DEPTH) return max;
    for (const child of Object.values(node)) stack.push([child, depth + 1]);
  }
  return max;
}
