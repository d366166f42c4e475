import Router from '@koa/router';
import { z } from 'zod';
import { newId } from '../../shared/ids.js';
import { notFound } from '../../shared/errors.js';
import { PAYMENT_EVENT_TYPES } from '../../shared/payments/stateMachine.js';
import { newWebhookSecret } from '../../shared/webhooks/signature.js';
import type { ApiDeps } from '../deps.js';
import { requireScope, type MerchantPrincipal } from '../auth/merchantAuth.js';
import { paginate } from '../pagination.js';
import { validate } from '../validation.js';

const createEndpointBody = z
  .object({
    url: z
      .string()
      .max(2048)
      .url()
      .refine((u) => /^https?:\/\//.test(u), { message: 'must be an http(s) URL' }),
    events: z.array(z.enum(['*', ...PAYMENT_EVENT_TYPES] as [string, ...string[]])).max(50).optional(),
    description: z.string().max(500).optional(),
  })
  .strict();

type EndpointRow = { seq: number; id: string; url: string; events: string[]; enabled: boolean; created_at: Date; secret: string };

const presentEndpoint = (r: EndpointRow) => ({
  id: r.id,
  object: 'webhook_endpoint' as const,
  url: r.url,
  events: r.events.length ? r.events : ['*'],
  enabled: r.enabled,
  created_at: r.created_at.toISOString(),
});

export function webhookEndpointRoutes(deps: ApiDeps): Router {
  const router = new Router();
  const merchantOf = (state: Record<string, unknown>) => (state.merchant as MerchantPrincipal).merchantId;

  router.post('/webhook-endpoints', requireScope('write'), async (ctx) => {
    const body = validate(createEndpointBody, ctx.request.body);
    const events = !body.events || body.events.includes('*') ? [] : [...new Set(body.events)];
    const [row]: EndpointRow[] = await deps.db('webhook_endpoints')
      .insert({ id: newId('we'), merchant_id: merchantOf(ctx.state), url: body.url, events, secret: newWebhookSecret() })
      .returning('*');
    ctx.status = 201;
    // The secret is shown on creation so the merchant can verify signatures.
    ctx.body = { ...presentEndpoint(row), secret: row.secret };
  });

  router.get('/webhook-endpoints', requireScope('read'), async (ctx) => {
    const scope = { merchant_id: merchantOf(ctx.state) };
    const { rows, hasMore } = await paginate<EndpointRow>(
      deps.db('webhook_endpoints').where(scope).whereNull('deleted_at'),
      'webhook_endpoints',
      scope,
      ctx.query,
    );
    ctx.body = { object: 'list', data: rows.map(presentEndpoint), has_more: hasMore };
  });

  router.get('/webhook-endpoints/:id', requireScope('read'), async (ctx) => {
    const row = await deps.db('webhook_endpoints').where({ id: ctx.params.id, merchant_id: merchantOf(ctx.state) }).whereNull('deleted_at').first();
    if (!row) throw notFound('webhook endpoint');
    ctx.body = presentEndpoint(row);
  });

  router.delete('/webhook-endpoints/:id', requireScope('write'), async (ctx) => {
    const n = await deps.db('webhook_endpoints')
      .where({ id: ctx.params.id, merchant_id: merchantOf(ctx.state) })
      .whereNull('deleted_at')
      .update({ deleted_at: deps.db.fn.now(), enabled: false });
    if (n === 0) throw notFound('webhook endpoint');
    ctx.body = { id: ctx.params.id, object: 'webhook_endpoint', deleted: true };
  });

  return router;
}
