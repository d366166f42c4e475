import type Router from '@koa/router';
import { createRouter } from './router.js';
import { z } from 'zod';
import { newId } from '../../shared/ids.js';
import { ApiError, notFound } from '../../shared/errors.js';
import { newWebhookSecret } from '../../shared/webhooks/signature.js';
import { createWebhookSecretBox } from '../../shared/webhooks/secretSealing.js';
import {
  SECRET_ROTATION_GRACE_SECONDS,
  SUBSCRIBABLE_EVENT_TYPES,
  disableEndpointInTx,
  findMerchantEndpoint,
  presentEndpoint,
  type WebhookEndpointRow,
} from '../../shared/webhooks/endpoints.js';
import { attemptsByDelivery, presentDelivery, sendTestEventInTx, type WebhookDeliveryRow } from '../../shared/webhooks/deliveries.js';
import { checkWebhookUrlWithDns } from '../../shared/webhooks/urlPolicy.js';
import type { ApiDeps } from '../deps.js';
import { merchantIdOf, requireScope } from '../auth/merchantAuth.js';
import { paginate } from '../pagination.js';
import { validate } from '../validation.js';

const endpointUrl = z
  .string()
  .max(2048)
  .url()
  .refine((u) => /^https?:\/\//.test(u), { message: 'must be an http(s) URL' });
const eventTypes = z.array(z.enum(['*', ...SUBSCRIBABLE_EVENT_TYPES] as [string, ...string[]])).max(50);

const createEndpointBody = z
  .object({
    url: endpointUrl,
    events: eventTypes.optional(),
    description: z.string().max(500).optional(),
  })
  .strict();

const updateEndpointBody = z
  .object({ url: endpointUrl.optional(), events: eventTypes.optional(), enabled: z.boolean().optional() })
  .strict();

const deliveryListQuery = z.object({ status: z.enum(['pending', 'succeeded', 'failed']).optional() }).loose();

/** `[]` in the database means every event. */
const storedEvents = (events: string[] | undefined) => (!events || events.includes('*') ? [] : [...new Set(events)]);

export function webhookEndpointRoutes(deps: ApiDeps): Router {
  const router = createRouter();
  // Signing secrets are stored sealed; this process only seals (workers open them to sign).
  const secrets = createWebhookSecretBox(deps.config.webhookSecretsKeys);

  /** SSRF guard at registration; the delivery-time half is in workers/webhooks/postWebhook.ts. */
  async function assertUrlAllowed(url: string) {
    const verdict = await checkWebhookUrlWithDns(url, deps.config.allowPrivateWebhookUrls);
    if (!verdict.allowed) {
      throw new ApiError(400, 'invalid_request_error', 'url_not_allowed', `Webhook URLs must reach a public address: ${verdict.reason}`, 'url');
    }
  }

  async function loadEndpoint(state: Record<string, unknown>, id: string): Promise<WebhookEndpointRow> {
    const row = await findMerchantEndpoint(deps.db, merchantIdOf({ state }), id);
    if (!row) throw notFound('webhook endpoint');
    return row;
  }

  router.post('/webhook-endpoints', requireScope('write'), async (ctx) => {
    const body = validate(createEndpointBody, ctx.request.body);
    await assertUrlAllowed(body.url);
    const id = newId('we');
    const secret = newWebhookSecret();
    const [row]: WebhookEndpointRow[] = await deps.db('webhook_endpoints')
      .insert({ id, merchant_id: merchantIdOf(ctx), url: body.url, events: storedEvents(body.events), secret: secrets.seal(id, secret) })
      .returning('*');
    ctx.status = 201;
    // The secret is shown on creation so the merchant can verify signatures.
    ctx.body = { ...presentEndpoint(row), secret };
  });

  router.get('/webhook-endpoints', requireScope('read'), async (ctx) => {
    const scope = { merchant_id: merchantIdOf(ctx) };
    const { rows, hasMore } = await paginate<WebhookEndpointRow>(
      deps.db('webhook_endpoints').where(scope).whereNull('deleted_at'),
      'webhook_endpoints',
      scope,
      ctx.query,
    );
    ctx.body = { object: 'list', data: rows.map(presentEndpoint), has_more: hasMore };
  });

  router.get('/webhook-endpoints/:id', requireScope('read'), async (ctx) => {
    ctx.body = presentEndpoint(await loadEndpoint(ctx.state, ctx.params.id));
  });

  /**
   * Changes url, events or enabled. `enabled: true` re-enables an endpoint that was disabled (410 Gone, days of
   * failures, or by the merchant) and starts its failure clock afresh; deliveries failed meanwhile stay failed
   * (redeliver them one by one).
   */
  router.patch('/webhook-endpoints/:id', requireScope('write'), async (ctx) => {
    const body = validate(updateEndpointBody, ctx.request.body);
    await loadEndpoint(ctx.state, ctx.params.id);
    if (body.url !== undefined) await assertUrlAllowed(body.url);
    const row = await deps.db.transaction(async (trx) => {
      const changes: Record<string, unknown> = { updated_at: trx.fn.now() };
      if (body.url !== undefined) changes.url = body.url;
      if (body.events !== undefined) changes.events = storedEvents(body.events);
      if (body.enabled === true) Object.assign(changes, { enabled: true, disabled_reason: null, disabled_at: null, failing_since: null });
      const [updated]: WebhookEndpointRow[] = await trx('webhook_endpoints')
        .where({ id: ctx.params.id, merchant_id: merchantIdOf(ctx) })
        .whereNull('deleted_at')
        .update(changes)
        .returning('*');
      if (!updated) throw notFound('webhook endpoint');
      if (body.enabled === false && updated.enabled) {
        await disableEndpointInTx(trx, updated.id, 'merchant', 'disabled by the merchant');
        return (await trx('webhook_endpoints').where({ id: updated.id }).first()) as WebhookEndpointRow;
      }
      return updated;
    });
    ctx.body = presentEndpoint(row);
  });

  router.delete('/webhook-endpoints/:id', requireScope('write'), async (ctx) => {
    const n = await deps.db('webhook_endpoints')
      .where({ id: ctx.params.id, merchant_id: merchantIdOf(ctx) })
      .whereNull('deleted_at')
      .update({ deleted_at: deps.db.fn.now(), enabled: false });
    if (n === 0) throw notFound('webhook endpoint');
    ctx.body = { id: ctx.params.id, object: 'webhook_endpoint', deleted: true };
  });

  /**
   * A new signing secret, returned once. The previous one keeps signing too (a second `v1,` signature in
   * `webhook-signature`) for 24 h, so receivers can switch without dropping a delivery. Rotating again within
   * those 24 h ends the older secret's grace at once: at most two secrets sign.
   */
  router.post('/webhook-endpoints/:id/rotate-secret', requireScope('write'), async (ctx) => {
    const secret = newWebhookSecret();
    const [row]: WebhookEndpointRow[] = await deps.db('webhook_endpoints')
      .where({ id: ctx.params.id, merchant_id: merchantIdOf(ctx) })
      .whereNull('deleted_at')
      .update({
        previous_secret: deps.db.ref('secret'),
        previous_secret_expires_at: deps.db.raw(`now() + make_interval(secs => ?)`, [SECRET_ROTATION_GRACE_SECONDS]),
        secret: secrets.seal(ctx.params.id, secret),
        updated_at: deps.db.fn.now(),
      })
      .returning('*');
    if (!row) throw notFound('webhook endpoint');
    ctx.body = { ...presentEndpoint(row), secret, previous_secret_expires_at: row.previous_secret_expires_at!.toISOString() };
  });

  /** Sends a `webhook.test` event to this endpoint only; answers with the delivery to follow in the log. */
  router.post('/webhook-endpoints/:id/test', requireScope('write'), async (ctx) => {
    const endpoint = await loadEndpoint(ctx.state, ctx.params.id);
    if (!endpoint.enabled) {
      throw new ApiError(409, 'conflict_error', 'endpoint_disabled', 'This webhook endpoint is disabled; enable it with PATCH first');
    }
    const { eventId, deliveryId } = await deps.db.transaction((trx) => sendTestEventInTx(trx, endpoint));
    ctx.status = 202;
    ctx.body = { object: 'webhook_test', event_id: eventId, delivery_id: deliveryId };
  });

  /** The delivery log of one endpoint, newest first, each delivery with all its attempts. */
  router.get('/webhook-endpoints/:id/deliveries', requireScope('read'), async (ctx) => {
    const endpoint = await loadEndpoint(ctx.state, ctx.params.id);
    const { status } = validate(deliveryListQuery, ctx.query);
    const scope = { endpoint_id: endpoint.id };
    const query = deps.db('webhook_deliveries')
      .join('events', 'events.id', 'webhook_deliveries.event_id')
      .where({ 'webhook_deliveries.endpoint_id': endpoint.id })
      .select('webhook_deliveries.*', 'events.type as event_type');
    if (status) query.where('webhook_deliveries.status', status);
    const { rows, hasMore } = await paginate<WebhookDeliveryRow>(query, 'webhook_deliveries', scope, ctx.query);
    const attempts = await attemptsByDelivery(deps.db, rows.map((r) => r.id));
    ctx.body = { object: 'list', data: rows.map((r) => presentDelivery(r, attempts.get(r.id)!)), has_more: hasMore };
  });

  return router;
}
