import type Router from '@koa/router';
import { createRouter } from './router.js';
import { isAddress, getAddress } from 'ethers';
import { z } from 'zod';
import { createMerchant } from '../../shared/merchants/createMerchant.js';
import type { ApiDeps } from '../deps.js';
import { adminAuth } from '../auth/adminAuth.js';
import { idempotency } from '../middleware/idempotency.js';
import { percentSchema, validate } from '../validation.js';
import { mountApiKeyAdminRoutes } from './adminKeys.js';

const address = z.string().refine((a) => isAddress(a), { message: 'must be a 0x address' });
const createMerchantBody = z
  .object({
    name: z.string().min(1).max(200),
    settlement_address: address.optional(),
    mode: z.enum(['live', 'test']).optional(),
    underpaid_tolerance_percent: percentSchema.optional(),
    late_payment_window_seconds: z.number().int().min(0).max(30 * 86400).optional(),
  })
  .strict();

export function adminRoutes(deps: ApiDeps): Router {
  const router = createRouter('/admin/v1');
  router.use(adminAuth(deps.config.adminToken));
  router.use(idempotency(deps.db, { scopeOf: () => 'admin', retentionHours: deps.config.idempotencyRetentionHours, secret: deps.config.jwtSecret }));
  router.post('/merchants', async (ctx) => {
    const body = validate(createMerchantBody, ctx.request.body);
    const merchant = await createMerchant(deps.db, {
      name: body.name,
      settlementAddress: body.settlement_address ? getAddress(body.settlement_address) : null,
      mode: body.mode ?? (deps.config.env === 'production' ? 'live' : 'test'),
      underpaidTolerancePercent: body.underpaid_tolerance_percent,
      latePaymentWindowSeconds: body.late_payment_window_seconds,
    });
    ctx.status = 201;
    ctx.body = { object: 'merchant', ...merchant };
  });
  mountApiKeyAdminRoutes(router, deps);
  return router;
}
