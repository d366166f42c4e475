import type Router from '@koa/router';
import { createRouter } from './router.js';
import { getAddress, isAddress } from 'ethers';
import { z } from 'zod';
import { ApiError, notFound } from '../../shared/errors.js';
import { recordEvent } from '../../shared/events/recordEvent.js';
import type { PaymentRow } from '../../shared/payments/paymentRow.js';
import { presentPayment } from '../../shared/payments/present.js';
import { hasUnfinalTransfers } from '../../shared/payments/reevaluatePayment.js';
import { assertTransition } from '../../shared/payments/stateMachine.js';
import { onPaymentConfirmed } from '../../shared/settlement/onPaymentConfirmed.js';
import type { ApiDeps } from '../deps.js';
import { merchantIdOf, requireScope } from '../auth/merchantAuth.js';
import { validate } from '../validation.js';

const resolveBody = z
  .object({
    action: z.enum(['accept', 'refund']),
    refund_address: z.string().refine((a) => isAddress(a), { message: 'must be a 0x address' }).optional(),
  })
  .strict();

/**
 * POST /api/v1/payments/:id/resolve — the merchant's answer to an expired payment that received funds (paid late,
 * or underpaid): `accept` confirms it (only once every counted transfer is final, so a reorg cannot undo it);
 * `refund` records that the funds go back (to `refund_address`, else the sender of the first transfer), which
 * settlement carries out.
 */
export function paymentResolutionRoutes(deps: ApiDeps): Router {
  const router = createRouter();
  router.post('/payments/:id/resolve', requireScope('write'), async (ctx) => {
    const body = validate(resolveBody, ctx.request.body);
    if (body.refund_address && body.action !== 'refund') {
      throw new ApiError(400, 'invalid_request_error', 'parameter_invalid', 'refund_address is only for action "refund"', 'refund_address');
    }
    const merchantId = merchantIdOf(ctx);
    ctx.body = await deps.db.transaction(async (trx) => {
      const payment: PaymentRow | undefined = await trx('payments').where({ id: ctx.params.id, merchant_id: merchantId }).forNoKeyUpdate().first();
      if (!payment) throw notFound('payment');
      if (payment.status !== 'expired' || !['paid_late', 'underpaid'].includes(payment.exception ?? '') || payment.resolution) {
        throw new ApiError(409, 'conflict_error', 'payment_not_resolvable', 'Only an expired payment that received funds (paid_late or underpaid) and is not yet resolved can be resolved');
      }
      let update: Partial<PaymentRow> & Record<string, unknown>;
      if (body.action === 'accept') {
        if (await hasUnfinalTransfers(trx, payment)) {
          throw new ApiError(409, 'conflict_error', 'transfers_not_final', 'Some transfers do not have enough confirmations yet; retry once they do');
        }
        assertTransition(payment.status, 'confirmed');
        update = { status: 'confirmed', resolution: 'accept', confirmed_at: trx.fn.now() as never };
      } else {
        update = { resolution: 'refund', refund_address: body.refund_address ? getAddress(body.refund_address) : null };
      }
      const [updated]: PaymentRow[] = await trx('payments')
        .where({ id: payment.id, status: 'expired' })
        .whereNull('resolution')
        .update({ ...update, resolved_at: trx.fn.now(), updated_at: trx.fn.now() })
        .returning('*');
      if (body.action === 'accept') await onPaymentConfirmed(trx, updated);
      const data = presentPayment(updated);
      if (body.action === 'accept') {
        await recordEvent(trx, { merchantId, type: 'payment.confirmed', paymentId: payment.id, data, requestId: ctx.state.requestId });
      }
      return data;
    });
  });
  return router;
}
