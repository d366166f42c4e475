import type Router from '@koa/router';
import { createRouter } from './router.js';
import { z } from 'zod';
import { notFound } from '../../shared/errors.js';
import type { ApiDeps } from '../deps.js';
import { merchantIdOf, requireScope } from '../auth/merchantAuth.js';
import { paginate } from '../pagination.js';
import { validate } from '../validation.js';

interface EventRow {
  seq: number;
  id: string;
  type: string;
  payment_id: string | null;
  data: unknown;
  created_at: Date;
}

/** The event as webhooks carry it, plus the payment it is about. */
const presentEvent = (r: EventRow) => ({
  id: r.id,
  object: 'event' as const,
  type: r.type,
  payment: r.payment_id,
  created_at: r.created_at.toISOString(),
  data: r.data,
});

const listEventsQuery = z
  .object({
    type: z.string().min(1).max(100).regex(/^[a-z_.*]+$/, 'must be an event type such as payment.confirmed').optional(),
    payment: z.string().min(1).max(64).optional(),
  })
  .loose();

/**
 * GET /api/v1/events and /api/v1/events/:id: every event recorded for the merchant (the same ones webhooks
 * deliver), newest first. Events are never deleted by PayFlow, so they are kept well beyond the promised 30 days.
 * `type` filters by exact type, or by a prefix ending in `.*` (`payment.*`).
 */
export function eventRoutes(deps: ApiDeps): Router {
  const router = createRouter();

  router.get('/events', requireScope('read'), async (ctx) => {
    const filter = validate(listEventsQuery, ctx.query);
    const scope = { merchant_id: merchantIdOf(ctx) };
    const query = deps.db('events').where(scope);
    if (filter.type?.endsWith('.*')) query.where('type', 'like', `${filter.type.slice(0, -1).replace(/[_%\\]/g, '\\$&')}%`);
    else if (filter.type) query.where({ type: filter.type });
    if (filter.payment) query.where({ payment_id: filter.payment });
    const { rows, hasMore } = await paginate<EventRow>(query, 'events', scope, ctx.query);
    ctx.body = { object: 'list', data: rows.map(presentEvent), has_more: hasMore };
  });

  router.get('/events/:id', requireScope('read'), async (ctx) => {
    const row: EventRow | undefined = await deps.db('events').where({ id: ctx.params.id, merchant_id: merchantIdOf(ctx) }).first();
    if (!row) throw notFound('event');
    ctx.body = presentEvent(row);
  });

  return router;
}
