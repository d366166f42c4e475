/**
 * The payment state machine: the one place that says which statuses exist, which moves between them are
 * allowed, and which event each move emits. Everything that changes a payment's status goes through
 * `decidePayment` (what the chain says it should be) and `assertTransition` (whether that move is legal).
 *
 *   pending    → confirming   a transfer to the deposit address was seen, in time
 *   pending    → expired      the chain passed expires_at with nothing (or too little) received in time
 *   pending    → canceled     the merchant canceled it
 *   (pending   → confirmed    only through confirming: a transfer seen and final in one scan emits both events)
 *   confirming → confirmed    received ≥ amount − tolerance, each counted transfer with enough confirmations
 *   confirming → pending      a reorg removed every transfer
 *   confirming → expired      underpaid when the chain passed expires_at
 *   expired    → confirming   a transfer mined before expires_at was seen after the expiry sweep (scanner lag)
 *   expired    → confirmed    as above once final, or the merchant accepted a late payment
 *   confirmed  → settled      the funds reached the merchant (settlement)
 *   expired    → refunded     the merchant chose refund for a late/underpaid payment and the funds went back
 */
export const PAYMENT_STATUSES = ['pending', 'confirming', 'confirmed', 'expired', 'canceled', 'settled', 'refunded'] as const;
export type PaymentStatus = (typeof PAYMENT_STATUSES)[number];

export const PAYMENT_EXCEPTIONS = ['underpaid', 'overpaid', 'paid_late'] as const;
export type PaymentException = (typeof PAYMENT_EXCEPTIONS)[number];

const TRANSITIONS: Record<PaymentStatus, readonly PaymentStatus[]> = {
  pending: ['confirming', 'expired', 'canceled'],
  confirming: ['pending', 'confirmed', 'expired'],
  expired: ['confirming', 'confirmed', 'refunded'],
  confirmed: ['settled'],
  canceled: [],
  settled: [],
  refunded: [],
};

export class IllegalTransitionError extends Error {
  override name = 'IllegalTransitionError';
  constructor(readonly from: PaymentStatus, readonly to: PaymentStatus) {
    super(`payment cannot move from ${from} to ${to}`);
  }
}

export function canTransition(from: PaymentStatus, to: PaymentStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

export function assertTransition(from: PaymentStatus, to: PaymentStatus): void {
  if (!canTransition(from, to)) throw new IllegalTransitionError(from, to);
}

export type PaymentEventType =
  | 'payment.created'
  | 'payment.confirming'
  | 'payment.confirmed'
  | 'payment.expired'
  | 'payment.canceled'
  | 'payment.settled'
  | 'payment.refunded'
  | 'payment.reorged'
  | 'payment.underpaid'
  | 'payment.overpaid'
  | 'payment.late'
  | 'payment.unexpected_asset';

export const PAYMENT_EVENT_TYPES: readonly PaymentEventType[] = [
  'payment.created', 'payment.confirming', 'payment.confirmed', 'payment.expired', 'payment.canceled',
  'payment.settled', 'payment.refunded', 'payment.reorged', 'payment.underpaid', 'payment.overpaid', 'payment.late',
  'payment.unexpected_asset',
];

/** A counted transfer as the decision needs it. */
export interface TransferView {
  amount: bigint;
  blockNumber: number;
  blockTimestamp: Date;
}

export interface PaymentView {
  status: PaymentStatus;
  exception: PaymentException | null;
  amount: bigint;
  underpaidTolerance: bigint;
  amountReceived: bigint;
  expiresAt: Date;
  /** How long after expiry arriving funds still make a payment `paid_late`; later funds are recorded only. */
  lateWindowSeconds: number;
}

/** What the scanner has verified of the chain. */
export interface ChainView {
  /** Highest block number whose transfers count as final for this payment. */
  finalThrough: number;
  /** Timestamp of the newest scanned block: the chain's own clock, so a lagging scanner cannot expire a payment early. */
  tipTimestamp: Date | null;
}

export interface PaymentDecision {
  status: PaymentStatus;
  exception: PaymentException | null;
  amountReceived: bigint;
  /** Events this change emits, in order. */
  events: PaymentEventType[];
}

const sum = (transfers: TransferView[]) => transfers.reduce((total, t) => total + t.amount, 0n);

/**
 * Decides a payment's status from its counted, canonical transfers. Pure: the caller loads the payment and
 * transfers under a row lock and applies the decision with a conditional update.
 *
 * A transfer is "in time" when its block's timestamp is ≤ expires_at: the chain's clock decides, not ours.
 */
export function decidePayment(payment: PaymentView, transfers: TransferView[], chain: ChainView): PaymentDecision {
  const amountReceived = sum(transfers);
  const unchanged: PaymentDecision = { status: payment.status, exception: payment.exception, amountReceived, events: [] };
  if (payment.status === 'confirmed' || payment.status === 'settled' || payment.status === 'canceled' || payment.status === 'refunded') return unchanged;

  const threshold = payment.amount - payment.underpaidTolerance;
  const expiry = payment.expiresAt.getTime();
  const inTime = transfers.filter((t) => t.blockTimestamp.getTime() <= expiry);
  const lateInWindow = transfers.filter(
    (t) => t.blockTimestamp.getTime() > expiry && t.blockTimestamp.getTime() <= expiry + payment.lateWindowSeconds * 1000,
  );
  const inTimeReceived = sum(inTime);
  const inTimeFinal = sum(inTime.filter((t) => t.blockNumber <= chain.finalThrough));
  const chainPassedExpiry = chain.tipTimestamp !== null && chain.tipTimestamp.getTime() > payment.expiresAt.getTime();

  let status: PaymentStatus;
  let exception: PaymentException | null = null;
  if (inTimeFinal >= threshold && inTimeReceived > 0n) {
    status = 'confirmed';
    if (amountReceived > payment.amount) exception = 'overpaid';
  } else if (inTimeReceived >= threshold && inTimeReceived > 0n) {
    status = 'confirming'; // paid in time, waiting for confirmations: never expires
  } else if (chainPassedExpiry) {
    status = 'expired';
    if (lateInWindow.length > 0) exception = 'paid_late';
    else if (inTimeReceived > 0n) exception = 'underpaid';
  } else {
    status = inTimeReceived > 0n ? 'confirming' : 'pending';
  }

  // Late funds never move a payment on their own: the merchant resolves it (accept → confirmed).
  if (payment.status === 'expired' && status === 'expired' && payment.exception === 'paid_late') exception = 'paid_late';

  const events: PaymentEventType[] = [];
  const statusChanged = status !== payment.status;
  const legal = canTransition(payment.status, status) || (payment.status === 'pending' && status === 'confirmed');
  if (statusChanged && !legal) return unchanged;
  if (amountReceived < payment.amountReceived) events.push('payment.reorged');
  // Seen and final in one scan: the merchant still gets the confirming step, so every payment tells one story.
  if (statusChanged && payment.status === 'pending' && status === 'confirmed') events.push('payment.confirming');
  if (statusChanged && status !== 'pending') events.push(`payment.${status}` as PaymentEventType);
  if (exception !== payment.exception) {
    if (exception === 'overpaid') events.push('payment.overpaid');
    if (exception === 'underpaid') events.push('payment.underpaid');
    if (exception === 'paid_late') events.push('payment.late');
  }
  return { status, exception, amountReceived, events };
}
