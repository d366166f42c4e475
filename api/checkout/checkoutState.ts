import type { PaymentException, PaymentStatus } from '../../shared/payments/stateMachine.js';

/**
 * What the paying customer is told, derived from the payment's status and exception. The page shows one panel
 * per state; the status endpoint sends the state so the browser never re-implements this mapping.
 *
 *   pending     nothing received yet: pay now, before the countdown ends
 *   confirming  a transfer was seen in time; waiting for confirmations (or, if it was short, for the rest)
 *   confirmed   confirmed or settled: the merchant has been paid
 *   underpaid   expired with too little received: the amount still due is shown
 *   late        expired, then funds arrived after the deadline: the merchant decides
 *   expired     expired with nothing received
 *   canceled    the merchant canceled it
 *   closed      any other final status (e.g. refunded): nothing more to pay
 */
export type CheckoutState = 'pending' | 'confirming' | 'confirmed' | 'underpaid' | 'late' | 'expired' | 'canceled' | 'closed';

export function checkoutState(status: PaymentStatus, exception: PaymentException | null): CheckoutState {
  switch (status) {
    case 'pending':
    case 'confirming':
    case 'canceled':
      return status;
    case 'confirmed':
    case 'settled':
      return 'confirmed';
    case 'expired':
      return exception === 'underpaid' ? 'underpaid' : exception === 'paid_late' ? 'late' : 'expired';
    default:
      return 'closed';
  }
}

/** States after which nothing the customer does can change the outcome: the page stops polling. */
export const FINAL_CHECKOUT_STATES: readonly CheckoutState[] = ['confirmed', 'canceled', 'closed'];
