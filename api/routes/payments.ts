import type Router from '@koa/router';
import { createRouter } from './router.js';
import { z } from 'zod';
import { ApiError, notFound } from '../../shared/errors.js';
import type { Db } from '../../shared/db.js';
import { recordEvent } from '../../shared/events/recordEvent.js';
import { createMerchantSettingsCache } from '../../shared/merchants/settingsCache.js';
import { createCustodialInserter, createPayment } from '../../shared/payments/createPayment.js';
import { createAddressSource } from '../../shared/wallet/addressPool.js';
import { findPaymentWithTransfers } from '../../shared/payments/findPayment.js';
import type { PaymentRow } from '../../shared/payments/paymentRow.js';
import { presentPayment } from '../../shared/payments/present.js';
import { assertTransition, PAYMENT_STATUSES } from '../../shared/payments/stateMachine.js';
import type { ApiDeps } from '../deps.js';
import { merchantIdOf, requireScope } from '../auth/merchantAuth.js';
import { paginate } from '../pagination.js';
import { metadataSchema, percentSchema, validate } from '../validation.js';

// The checkout page links the customer's browser to these: only http(s), so a javascript: URL can never be one.
const redirectUrl = z
  .string()
  .max(2048)
  .refine((u) => URL.canParse(u) && /^https?:$/.test(new URL(u).protocol), 'must be an absolute http(s) URL');

const createPaymentBody = z
  .object({
    amount: z.string({ error: (issue) => (issue.code === 'invalid_type' && issue.input !== undefined ? 'must be a decimal string, e.g. "0.05"' : undefined) }).max(100),
    currency: z.string().min(1).max(16),
    chain_id: z.number().int().positive().optional(),
    order_id: z.string().min(1).max(200).optional(),
    metadata: metadataSchema.optional(),
    expires_in: z.number().int().min(60).max(30 * 86400).optional(),
    confirmations: z.number().int().min(1).max(1000).optional(),
    success_url: redirectUrl.optional(),
    cancel_url: redirectUrl.optional(),
    underpaid_tolerance_percent: percentSchema.optional(),
    underpaid_tolerance_amount: z.string().max(100).optional(),
  })
  .strict();

const cancelBody = z.object({}).strict();

const listPaymentsQuery = z.object({ status: z.enum(PAYMENT_STATUSES).optional() }).loose();

export function paymentRoutes(deps: ApiDeps): Router {
  const router = createRouter();

  const createDeps = {
    db: deps.db,
    chains: deps.config.chains,
    wallet: deps.wallet,
    defaultExpiresIn: deps.config.defaultExpiresInSeconds,
    publicUrl: deps.config.publicUrl,
    fastPath: {
      addresses: createAddressSource(deps.db, deps.wallet),
      merchants: createMerchantSettingsCache(deps.db),
      insert: createCustodialInserter(deps.db, deps.deliveries!),
    },
  };
  router.post('/payments', requireScope('write'), async (ctx) => {
    const body = validate(createPaymentBody, ctx.request.body);
    const created = await createPayment(
      createDeps,
      merchantIdOf(ctx),
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
        underpaidTolerancePercent: body.underpaid_tolerance_percent,
        underpaidToleranceAmount: body.underpaid_tolerance_amount,
      },
      ctx.state.requestId,
    ).catch((err) => rethrowOrderIdExists(deps, merchantIdOf(ctx), body.order_id, err));
    ctx.status = 201;
    ctx.body = created;
  });

  router.post('/payments/:id/cancel', requireScope('write'), async (ctx) => {
    validate(cancelBody, ctx.request.body);
    ctx.body = await cancelPayment(deps.db, merchantIdOf(ctx), ctx.params.id, ctx.state.requestId);
  });

  router.get('/payments/:id', requireScope('read'), async (ctx) => {
    const found = await findPaymentWithTransfers(deps.db, merchantIdOf(ctx), ctx.params.id);
    if (!found) throw notFound('payment');
    ctx.body = presentPayment(found.payment, { transfers: found.transfers, scannedTip: found.scannedTip });
  });

  router.get('/payments', requireScope('read'), async (ctx) => {
    const { status } = validate(listPaymentsQuery, ctx.query);
    const scope = { merchant_id: merchantIdOf(ctx) };
    const query = deps.db('payments').where(scope);
    if (status) query.where({ status });
    const { rows, hasMore } = await paginate<PaymentRow>(query, 'payments', scope, ctx.query);
    ctx.body = { object: 'list', data: rows.map((r) => presentPayment(r)), has_more: hasMore };
  });

  return router;
}

/**
 * order_id is unique per merchant (index payments_merchant_order_id). Two racing creates for one order both pass
 * any pre-check, so the database decides: the loser's unique violation becomes 409 naming the existing payment.
 */
async function rethrowOrderIdExists(deps: ApiDeps, merchantId: string, orderId: string | undefined, err: unknown): Promise<never> {
  const e = err as { code?: string; constraint?: string };
  if (orderId !== undefined && e.code === '23505' && e.constraint === 'payments_merchant_order_id') {
    const existing = await deps.db('payments').select('id').where({ merchant_id: merchantId, order_id: orderId }).first();
    throw new ApiError(409, 'conflict_error', 'order_id_exists', `A payment for order_id ${JSON.stringify(orderId)} already exists`, 'order_id', {
      payment_id: existing?.id ?? null,
    });
  }
  throw err;
}

/**
 * pending → canceled, through the state machine: the row is locked, the move checked, the update conditional on
 * the status read, and the `payment.canceled` event recorded in the same transaction. A payment the chain has
 * already moved on (a transfer seen, expired, confirmed) answers 409.
 */
async function cancelPayment(db: Db, merchantId: string, paymentId: string, requestId?: string) {
  return db.transaction(async (trx) => {
    const payment: PaymentRow | undefined = await trx('payments').where({ id: paymentId, merchant_id: merchantId }).forNoKeyUpdate().first();
    if (!payment) throw notFound('payment');
    if (payment.status !== 'pending') {
      throw new ApiError(409, 'conflict_error', 'payment_not_cancelable', `Only a pending payment can be canceled; this one is ${payment.status}`);
    }
    assertTransition(payment.status, 'canceled');
    const [updated]: PaymentRow[] = await trx('payments')
      .where({ id: payment.id, status: 'pending' })
      .update({ status: 'canceled', updated_at: trx.fn.now() })
      .returning('*');
    const data = presentPayment(updated);
    await recordEvent(trx, { merchantId, type: 'payment.canceled', paymentId: payment.id, data, requestId });
    return data;
  });
}
