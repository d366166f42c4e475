import type Router from '@koa/router';
import { createRouter } from './router.js';
import { getAddress, isAddress } from 'ethers';
import { z } from 'zod';
import type { Db } from '../../shared/db.js';
import { invalidRequest, notFound } from '../../shared/errors.js';
import { parseXpub, XpubError } from '../../shared/settlement/depositAddress.js';
import type { ApiDeps } from '../deps.js';
import { adminAuth } from '../auth/adminAuth.js';
import { merchantIdOf, requireScope } from '../auth/merchantAuth.js';
import { validate } from '../validation.js';

const settlementBody = z
  .object({
    settlement_address: z
      .string()
      .refine((a) => isAddress(a), { message: 'must be a 0x address' })
      .nullable()
      .optional(),
    xpub: z.string().max(200).nullable().optional(),
  })
  .strict();

type MerchantRow = { id: string; name: string; settlement_address: string | null; xpub: string | null; created_at: Date };

const presentMerchant = (m: MerchantRow) => ({
  id: m.id,
  object: 'merchant' as const,
  name: m.name,
  settlement_address: m.settlement_address,
  xpub: m.xpub,
  custody: m.xpub ? ('non_custodial' as const) : ('custodial' as const),
  created_at: m.created_at.toISOString(),
});

/**
 * Changes where a merchant is paid. `settlement_address`: where custodial settlements go (sweeps already started
 * keep the address they started with). `xpub`: non-custodial mode for payments created from now on (deposit
 * addresses derived from it, no keys held, no sweeps); null goes back to custodial. Existing payments keep theirs.
 */
async function updateSettlement(db: Db, merchantId: string, input: unknown): Promise<MerchantRow> {
  const body = validate(settlementBody, input);
  const update: Record<string, unknown> = {};
  if (body.settlement_address !== undefined) update.settlement_address = body.settlement_address ? getAddress(body.settlement_address) : null;
  if (body.xpub !== undefined) {
    if (body.xpub !== null) {
      try {
        parseXpub(body.xpub);
      } catch (err) {
        if (err instanceof XpubError) throw invalidRequest('xpub_invalid', err.message, 'xpub');
        throw err;
      }
    }
    update.xpub = body.xpub;
  }
  const query = db('merchants').where({ id: merchantId });
  const [row]: MerchantRow[] = Object.keys(update).length ? await query.update(update).returning('*') : [await query.first()];
  if (!row) throw notFound('merchant');
  return row;
}

/** GET / PATCH /api/v1/merchant: the authenticated merchant's own settlement settings. */
export function merchantRoutes(deps: ApiDeps): Router {
  const router = createRouter();
  router.get('/merchant', requireScope('read'), async (ctx) => {
    const row: MerchantRow | undefined = await deps.db('merchants').where({ id: merchantIdOf(ctx) }).first();
    if (!row) throw notFound('merchant');
    ctx.body = presentMerchant(row);
  });
  router.patch('/merchant', requireScope('write'), async (ctx) => {
    ctx.body = presentMerchant(await updateSettlement(deps.db, merchantIdOf(ctx), ctx.request.body));
  });
  return router;
}

/** PATCH /admin/v1/merchants/:id: the same settings, set by the operator. */
export function merchantAdminRoutes(deps: ApiDeps): Router {
  const router = createRouter('/admin/v1');
  router.use(adminAuth(deps.config.adminToken));
  router.patch('/merchants/:id', async (ctx) => {
    ctx.body = presentMerchant(await updateSettlement(deps.db, ctx.params.id, ctx.request.body));
  });
  return router;
}
