import Router from '@koa/router';

/**
 * Every router of the API, matching paths case-sensitively. @koa/router matches without regard to case by default,
 * so `/API/v1/payments` reached the payment routes while the middleware that look at the path (the per-IP limit
 * on `/api/`, the JSON security headers, conditional GET) did not see an API request, and a guess at an API key
 * went unlimited. Paths are case-sensitive everywhere in the API document; ids in them are too.
 */
export function createRouter(prefix?: string): Router {
  return new Router({ sensitive: true, ...(prefix ? { prefix } : {}) });
}
