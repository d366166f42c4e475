import type Router from '@koa/router';
import { createRouter } from './router.js';
import type Koa from 'koa';
import { httpRequestDuration, metricsAuthorized, metricsRegistry } from '../../shared/metrics.js';
import { unauthorized } from '../../shared/errors.js';

/**
 * Times every request by its route template (`/api/v1/payments/:id`, never the concrete path, so ids do not become
 * label values). Mounted right after requestContext so it sees the status the error handler settles on.
 */
export function httpMetrics(): Koa.Middleware {
  return async (ctx, next) => {
    const end = httpRequestDuration.startTimer();
    try {
      await next();
    } finally {
      const route = ctx.path.startsWith('/admin/queues') ? '/admin/queues' : ((ctx as { _matchedRoute?: string })._matchedRoute ?? 'unmatched');
      end({ method: ctx.method, route: String(route), status: String(ctx.status) });
    }
  };
}

/** GET /metrics: Prometheus text format, behind METRICS_TOKEN (Bearer, or Basic with the token as password). */
export function metricsRoutes(metricsToken: string): Router {
  const router = createRouter();
  router.get('/metrics', async (ctx) => {
    if (!metricsAuthorized(ctx.get('authorization'), metricsToken)) {
      ctx.set('WWW-Authenticate', 'Basic realm="payflow metrics"');
      throw unauthorized('Metrics token required');
    }
    ctx.type = metricsRegistry.contentType;
    ctx.body = await metricsRegistry.metrics();
  });
  return router;
}
