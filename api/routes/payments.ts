import Router from '@koa/router';
import { z } from 'zod';
import { notFound } from '../../shared/errors.js';
import { createPayment } from '../../shared/payments/createPayment.js';
import type { PaymentRow, TransferRow } from '../../shared/payments/paymentRow.js';
import { presentPayment } from '../../shared/payments/present.js';
import { PAYMENT_STATUSES } from '../../shared/payments/stateMachine.js';
import type { ApiDeps } from '../deps.js';
import type { MerchantPrincipal } from '../auth/merchantAuth.js';
import { requireScope } from '../auth/merchantAuth.js';
import { paginate } from '../pagination.js';
import { metadataSchema, validate } from '../validation.js';

// The checkout page links the customer's browser to these: only http(s), so a javascript: URL can never be one.
const redirectUrl = z
  .string()
  .max(2048)
  .refine((u) => URL.canParse(u) && /^https?:$/.test(new URL(u).protocol), 'must be an absolute http(s) URL');

const createPaymentBody = z
  .object({
    amount: z.string({ invalid_type_error: 'must be a decimal string, e.g. "0.05"' }).max(100),
    currency: z.string().min(1).max(16),
    chain_id: z.number().int().positive().optional(),
    order_id: z.string().min(1).max(200).optional(),
    metadata: metadataSchema.optional(),
    expires_in: z.number().int().min(60).max(30 * 86400).optional(),
    confirmations: z.number().int().min(1).max(1000).optional(),
    success_url: redirectUrl.optional(),
    cancel_url: redirectUrl.optional(),
  })
  .strict();

const listPaymentsQuery = z.object({ status: z.enum(PAYMENT_STATUSES).optional() }).passthrough();

export function paymentRoutes(deps: ApiDeps): Router {
  const router = new Router();
  const merchantOf = (state: Record<string, unknown>) => (state.merchant as MerchantPrincipal).merchantId;

  router.post('/payments', requireScope('write'), async (ctx) => {
    const body = validate(createPaymentBody, ctx.request.body);
    ctx.status = 201;
    ctx.body = await createPayment(
      { db: deps.db, chains: deps.config.chains, wallet: deps.wallet, defaultExpiresIn: deps.config.defaultExpiresInSeconds, publicUrl: deps.config.publicUrl },
      merchantOf(ctx.state),
      {
        amount: body.amount,
        currency: body.currency,
        chainId: body.chain_id,
        orderId: body.order_id,
        metadata: body.metadata,
        expiresIn: body.expires_in,
        confirmations: body.confirmations,
        successUrl: body.success_url,
        cancelUrl: body.cancel_url,
      },
      ctx.state.requestId,
    );
  });

  router.get('/payments/:id', requireScope('read'), async (ctx) => {
    const payment: PaymentRow | undefined = await deps.db('payments').where({ id: ctx.params.id, merchant_id: merchantOf(ctx.state) }).first();
    if (!payment) throw notFound('payment');
    const [transfers, cursor] = await Promise.all([
      deps.db('transfers').where({ payment_id: payment.id }).whereNull('orphaned_at').orderBy('id') as Promise<TransferRow[]>,
      deps.db('chain_cursors').where({ chain_id: payment.chain_id }).first(),
    ]);
    ctx.body = presentPayment(payment, { transfers, scannedTip: cursor ? Number(cursor.next_block) - 1 : null });
  });

  router.get('/payments', requireScope('read'), async (ctx) => {
    const { status } = validate(listPaymentsQuery, ctx.query);
    const scope = { merchant_id: merchantOf(ctx.state) };
    const query = deps.db('payments').where(scope);
    if (status) query.where({ status });
    const { rows, hasMore } = await paginate<PaymentRow>(query, 'payments', scope, ctx.query);
    ctx.body = { object: 'list', data: rows.map((r) => presentPayment(r)), has_more: hasMore };
  });

  return router;
}
