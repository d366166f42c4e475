import Koa from 'koa';
import { createRouter } from './routes/router.js';
import compose from 'koa-compose';
import type { ApiDeps } from './deps.js';
import { errorHandler } from './middleware/errors.js';
import { requestContext } from './middleware/requestContext.js';
import { jsonBody } from './middleware/jsonBody.js';
import { merchantAuth, merchantIdOf } from './auth/merchantAuth.js';
import { createApiKeyCache } from './auth/apiKeyCache.js';
import { createDeliveryDispatcher, viaHandoff } from '../shared/webhooks/dispatchDeliveries.js';
import { compressJson, conditionalGet, corsFor, securityHeaders, serializeJson } from './middleware/http.js';
import { idempotency } from './middleware/idempotency.js';
import { ipRateLimit, merchantRateLimit } from './middleware/rateLimit.js';
import { apiDocsRoutes } from './routes/apiDocs.js';
import { eventRoutes } from './routes/events.js';
import { adminRoutes } from './routes/admin.js';
import { authRoutes } from './routes/auth.js';
import { chainRoutes } from './routes/chains.js';
import { paymentRoutes } from './routes/payments.js';
import { paymentResolutionRoutes } from './routes/paymentResolution.js';
import { webhookEndpointRoutes } from './routes/webhookEndpoints.js';
import { webhookDeliveryRoutes } from './routes/webhookDeliveries.js';
import { ledgerRoutes } from './routes/ledger.js';
import { merchantAdminRoutes, merchantRoutes } from './routes/merchant.js';
import { checkoutRoutes } from './routes/checkout.js';
import { httpMetrics, metricsRoutes } from './routes/opsMetrics.js';
import { readyRoutes } from './routes/opsReady.js';
import { bullBoard } from './routes/opsBullBoard.js';

/** The Koa application. Pure wiring: routes and middleware, no listening, so tests can mount it as they like. */
export function createApp(deps: ApiDeps): Koa {
  // Behind N proxies, the client is the address the outermost of ours appended: N from the right of X-Forwarded-For
  // (everything left of it is whatever the client chose to send).
  const app = new Koa({ proxy: deps.config.trustProxy, maxIpsCount: deps.config.trustProxyHops });
  app.silent = true; // errors are logged by errorHandler, once, with the request id

  deps = {
    ...deps,
    apiKeys: deps.apiKeys ?? createApiKeyCache(deps.db, deps.config.apiKeyCacheTtlMs),
    deliveries: deps.deliveries ?? createDeliveryDispatcher({ ...deps, transport: viaHandoff(deps.redis, deps.config.queuePrefix) }),
  };

  // GET /health is answered before Koa, by the server in api/main.ts (api/health.ts).
  app.use(requestContext(deps.log));
  app.use(httpMetrics());
  // Outside the error handler, so error responses get security headers, CORS headers and compression too.
  app.use(securityHeaders());
  if (deps.config.corsOrigins.length > 0) app.use(corsFor(deps.config.corsOrigins));
  app.use(compressJson());
  app.use(conditionalGet());
  app.use(serializeJson());
  app.use(errorHandler());
  // Everything outside /api/ (ops, docs, checkout, admin) is skipped by /api/ requests, the hot ones: each router
  // matches a request against every route it has, and there are six of them.
  const admin = adminRoutes(deps);
  // (Routers type their context more narrowly than plain middleware; at run time they are plain middleware.)
  const outsideApi = (middleware: unknown[]): Koa.Middleware => {
    const stack = compose(middleware as Koa.Middleware[]);
    // `mounted` lets the route inventory (test/integration/openapi.test.ts) see the routers inside.
    return Object.assign((ctx: Koa.Context, next: Koa.Next) => (ctx.path.startsWith('/api/') ? next() : stack(ctx, next)), { mounted: middleware });
  };
  // Ops routes come before the JSON body parser: Bull Board parses its own bodies.
  app.use(outsideApi([bullBoard(deps), metricsRoutes(deps.config.metricsToken).routes(), readyRoutes(deps).routes()]));
  app.use(jsonBody());
  app.use(
    outsideApi([
      apiDocsRoutes().routes(),
      // The hosted checkout page (public, HTML): GET /pay/:id and its status poll.
      checkoutRoutes(deps).routes(),
      admin.routes(),
      admin.allowedMethods({ throw: false }),
      merchantAdminRoutes(deps).routes(),
    ]),
  );

  // Token exchange is the one /api/v1 route that takes the API key in the body instead of the header.
  const limits = { redis: deps.redis, namespace: deps.config.queuePrefix, windowMs: deps.config.rateLimitWindowMs, log: deps.log };
  // The per-IP limit is there for key guessing and anonymous load. A request bearing an API key this process has
  // verified moments ago is neither: the per-key limit below bounds it, and skipping the IP check saves a Redis
  // round trip on every authenticated request (the bench's GET /payments/:id was bound by them).
  const perIp = ipRateLimit({ ...limits, max: deps.config.rateLimitPerIp });
  const apiKeys = deps.apiKeys!;
  const bearerKey = (ctx: Koa.Context) => /^Bearer (sk_\S+)$/.exec(ctx.get('authorization'))?.[1];
  app.use((ctx, next) => {
    if (!ctx.path.startsWith('/api/')) return next();
    const key = bearerKey(ctx);
    const known = key === undefined ? undefined : apiKeys.knownActive(key);
    if (!known) return perIp(ctx, next);
    // merchantAuth takes the key found here instead of hashing the credential a second time.
    ctx.state.knownApiKey = known;
    return next();
  });

  const publicV1 = createRouter('/api/v1');
  publicV1.use(authRoutes(deps).routes());
  app.use(publicV1.routes());

  const v1 = createRouter('/api/v1');
  v1.use(merchantAuth(deps.apiKeys!, deps.jwtKey));
  v1.use(merchantRateLimit({ ...limits, read: deps.config.rateLimitRead, write: deps.config.rateLimitWrite }));
  v1.use(idempotency(deps.db, { scopeOf: merchantIdOf, retentionHours: deps.config.idempotencyRetentionHours, secret: deps.config.jwtSecret }));
  for (const r of [chainRoutes(deps), paymentRoutes(deps), paymentResolutionRoutes(deps), eventRoutes(deps), webhookEndpointRoutes(deps), webhookDeliveryRoutes(deps)]) v1.use(r.routes());
  for (const r of [ledgerRoutes(deps), merchantRoutes(deps)]) v1.use(r.routes());
  app.use(v1.routes());
  return app;
}
