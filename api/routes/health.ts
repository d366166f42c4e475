import Router from '@koa/router';

/** GET /health: liveness only. Public and cheap: it touches no dependency. */
export function healthRoutes(): Router {
  const router = new Router();
  router.get('/health', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  return router;
}
