import type Router from '@koa/router';
import { createRouter } from './router.js';
import { ApiError, notFound } from '../../shared/errors.js';
import { attemptsByDelivery, presentDelivery, redeliverInTx, type WebhookDeliveryRow } from '../../shared/webhooks/deliveries.js';
import type { ApiDeps } from '../deps.js';
import { merchantIdOf, requireScope } from '../auth/merchantAuth.js';

export function webhookDeliveryRoutes(deps: ApiDeps): Router {
  const router = createRouter();

  /** A delivery of the merchant's, through its endpoint (deleted endpoints' deliveries stay readable). */
  const findDelivery = (merchantId: string, id: string): Promise<(WebhookDeliveryRow & { endpoint_enabled: boolean; endpoint_deleted_at: Date | null }) | undefined> =>
    deps.db('webhook_deliveries')
      .join('webhook_endpoints', 'webhook_endpoints.id', 'webhook_deliveries.endpoint_id')
      .join('events', 'events.id', 'webhook_deliveries.event_id')
      .where({ 'webhook_deliveries.id': id, 'webhook_endpoints.merchant_id': merchantId })
      .select('webhook_deliveries.*', 'events.type as event_type', 'webhook_endpoints.enabled as endpoint_enabled', 'webhook_endpoints.deleted_at as endpoint_deleted_at')
      .first();

  async function present(row: WebhookDeliveryRow) {
    const attempts = await attemptsByDelivery(deps.db, [row.id]);
    return presentDelivery(row, attempts.get(row.id)!);
  }

  router.get('/webhook-deliveries/:id', requireScope('read'), async (ctx) => {
    const row = await findDelivery(merchantIdOf(ctx), ctx.params.id);
    if (!row) throw notFound('webhook delivery');
    ctx.body = await present(row);
  });

  /**
   * Sends a finished delivery (succeeded or failed) again: a new attempt now with the same event, so the same
   * `webhook-id`, and a fresh retry schedule should it fail. 409 while it is still pending or when its endpoint is
   * disabled (re-enable it with PATCH first).
   */
  router.post('/webhook-deliveries/:id/redeliver', requireScope('write'), async (ctx) => {
    const found = await findDelivery(merchantIdOf(ctx), ctx.params.id);
    if (!found) throw notFound('webhook delivery');
    if (found.endpoint_deleted_at || !found.endpoint_enabled) {
      throw new ApiError(409, 'conflict_error', 'endpoint_disabled', 'The endpoint of this delivery is disabled or deleted; enable it with PATCH first');
    }
    const redelivered = await deps.db.transaction((trx) => redeliverInTx(trx, found.id));
    if (!redelivered) {
      throw new ApiError(409, 'conflict_error', 'delivery_pending', 'This delivery is still pending: it will be attempted on its schedule');
    }
    ctx.status = 202;
    ctx.body = await present({ ...redelivered, event_type: found.event_type });
  });

  return router;
}
