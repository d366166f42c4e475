import Koa from 'koa';
import Router from '@koa/router';
import type { ApiDeps } from './deps.js';
import { errorHandler } from './middleware/errors.js';
import { requestContext } from './middleware/requestContext.js';
import { jsonBody } from './middleware/jsonBody.js';
import { merchantAuth } from './auth/merchantAuth.js';
import { healthRoutes } from './routes/health.js';
import { adminRoutes } from './routes/admin.js';
import { authRoutes } from './routes/auth.js';
import { chainRoutes } from './routes/chains.js';
import { paymentRoutes } from './routes/payments.js';
import { paymentResolutionRoutes } from './routes/paymentResolution.js';
import { webhookEndpointRoutes } from './routes/webhookEndpoints.js';
import { httpMetrics, metricsRoutes } from './routes/opsMetrics.js';
import { readyRoutes } from './routes/opsReady.js';
import { bullBoard } from './routes/opsBullBoard.js';
import { webhookDeliveryRoutes } from './routes/webhookDeliveries.js';
import { ledgerRoutes } from './routes/ledger.js';
import { merchantAdminRoutes, merchantRoutes } from './routes/merchant.js';
import { checkoutRoutes } from './routes/checkout.js';

/** The Koa application. Pure wiring: routes and middleware, no listening, so tests can mount it as they like. */
export function createApp(deps: ApiDeps): Koa {
  const app = new Koa({ proxy: deps.config.trustProxy });
  app.silent = true; // errors are logged by errorHandler, once, with the request id

  app.use(requestContext(deps.log));
  app.use(httpMetrics());
  app.use(errorHandler());
  // Ops routes come before the JSON body parser: Bull Board parses its own bodies.
  app.use(bullBoard(deps));
  app.use(metricsRoutes(deps.config.metricsToken).routes());
  app.use(readyRoutes(deps).routes());
  app.use(jsonBody());

  const health = healthRoutes();
  app.use(health.routes());

  // The hosted checkout page (public, HTML): GET /pay/:id and its status poll.
  app.use(checkoutRoutes(deps).routes());

  const admin = adminRoutes(deps);
  app.use(admin.routes()).use(admin.allowedMethods({ throw: false }));
  app.use(merchantAdminRoutes(deps).routes());

  // Token exchange is the one /api/v1 route that takes the API key in the body instead of the header.
  const publicV1 = new Router({ prefix: '/api/v1' });
  publicV1.use(authRoutes(deps).routes());
  app.use(publicV1.routes());

  const v1 = new Router({ prefix: '/api/v1' });
  v1.use(merchantAuth(deps.db, deps.jwtKey));
  for (const r of [chainRoutes(deps), paymentRoutes(deps), paymentResolutionRoutes(deps), webhookEndpointRoutes(deps), webhookDeliveryRoutes(deps)]) v1.use(r.routes());
  for (const r of [ledgerRoutes(deps), merchantRoutes(deps)]) v1.use(r.routes());
  app.use(v1.routes());
  return app;
}
