import type Router from '@koa/router';
import { createRouter } from './router.js';
import { z } from 'zod';
import { merchantBalances, presentLedgerEntry, type LedgerEntryRow } from '../../shared/ledger/ledgerEntries.js';
import type { ApiDeps } from '../deps.js';
import { merchantIdOf, requireScope } from '../auth/merchantAuth.js';
import { paginate } from '../pagination.js';
import { validate } from '../validation.js';

const ledgerQuery = z
  .object({
    payment_id: z.string().max(64).optional(),
    currency: z.string().max(16).optional(),
    chain_id: z.coerce.number().int().positive().optional(),
  })
  .loose();

/**
 * GET /api/v1/balance — per asset: what PayFlow holds for the merchant (`pending`) and the totals received,
 * paid as network fees, settled and refunded, all from the ledger.
 * GET /api/v1/ledger — the ledger entries, newest first, cursor-paginated like every list.
 */
export function ledgerRoutes(deps: ApiDeps): Router {
  const router = createRouter();

  router.get('/balance', requireScope('read'), async (ctx) => {
    ctx.body = { object: 'balance', data: await merchantBalances(deps.db, merchantIdOf(ctx)) };
  });

  router.get('/ledger', requireScope('read'), async (ctx) => {
    const filters = validate(ledgerQuery, ctx.query);
    const scope = { merchant_id: merchantIdOf(ctx) };
    const query = deps.db('ledger_entries').where(scope);
    if (filters.payment_id) query.where({ payment_id: filters.payment_id });
    if (filters.currency) query.where({ currency: filters.currency });
    if (filters.chain_id) query.where({ chain_id: filters.chain_id });
    const { rows, hasMore } = await paginate<LedgerEntryRow>(query, 'ledger_entries', scope, ctx.query);
    ctx.body = { object: 'list', data: rows.map(presentLedgerEntry), has_more: hasMore };
  });
  return router;
}
