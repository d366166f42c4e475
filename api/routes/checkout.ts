import type Router from '@koa/router';
import { createRouter } from './router.js';
import { createHash } from 'node:crypto';
import { ApiError, notFound } from '../../shared/errors.js';
import type { ApiDeps } from '../deps.js';
import { loadCheckoutPayment, presentCheckoutStatus } from '../checkout/loadCheckout.js';
import { CHECKOUT_SECURITY_HEADERS, renderCheckoutPage, renderNotFoundPage, renderTooManyRequestsPage } from '../checkout/page.js';
import { ipRateLimit } from '../middleware/rateLimit.js';

/**
 * The hosted checkout page, public: the unguessable payment id in the URL is the only key, so these routes show
 * only what the paying customer needs (never the merchant id, order id or metadata).
 *
 *   GET /pay/:id         HTML page, rendered with the current status; its inline script keeps it live
 *   GET /pay/:id/status  the minimal JSON the script polls (ETag + no-cache: unchanged polls are 304s)
 */
export function checkoutRoutes(deps: ApiDeps): Router {
  const router = createRouter('/pay');
  // The API's Redis limiter, with its own budget per client IP (customers are not merchants): shared by every API
  // process, and failing open when Redis is down so the page stays up.
  const perIp = ipRateLimit({
    redis: deps.redis,
    namespace: `${deps.config.queuePrefix}:checkout`,
    windowMs: 60_000,
    max: deps.config.checkoutRateLimit,
    log: deps.log,
  });

  router.use(async (ctx, next) => {
    ctx.set(CHECKOUT_SECURITY_HEADERS);
    try {
      await perIp(ctx, next);
    } catch (err) {
      // The status poll keeps the JSON 429 the limiter throws; a person loading the page gets a page.
      if (!(err instanceof ApiError && err.status === 429) || ctx.path.endsWith('/status')) throw err;
      ctx.status = 429;
      ctx.type = 'html';
      ctx.body = renderTooManyRequestsPage(Number(ctx.response.get('Retry-After')) || 60);
    }
  });

  router.get('/:id', async (ctx) => {
    const payment = await loadCheckoutPayment(deps.db, deps.config.chains, ctx.params.id);
    ctx.set('Cache-Control', 'no-store'); // rendered with the status of this moment
    ctx.type = 'html';
    if (!payment) {
      ctx.status = 404;
      ctx.body = renderNotFoundPage();
      return;
    }
    ctx.body = await renderCheckoutPage(payment, new Date());
  });

  router.get('/:id/status', async (ctx) => {
    const payment = await loadCheckoutPayment(deps.db, deps.config.chains, ctx.params.id);
    if (!payment) throw notFound('payment');
    const body = JSON.stringify(presentCheckoutStatus(payment));
    ctx.set('Cache-Control', 'no-cache'); // any cache must ask again every time; the ETag makes asking cheap
    ctx.etag = `W/"${createHash('sha1').update(body).digest('base64url')}"`;
    ctx.status = 200;
    if (ctx.fresh) {
      ctx.status = 304;
      return;
    }
    ctx.type = 'json';
    ctx.body = body;
  });

  return router;
}
