import { expect } from 'chai';
import { assertTransition, canTransition, decidePayment, IllegalTransitionError, type PaymentView, type TransferView } from '../../shared/payments/stateMachine.js';

const T0 = new Date('2026-01-01T00:00:00Z');
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);
const EXPIRES = at(900);

const payment = (over: Partial<PaymentView> = {}): PaymentView => ({
  status: 'pending',
  exception: null,
  amount: 1000n,
  underpaidTolerance: 0n,
  amountReceived: 0n,
  expiresAt: EXPIRES,
  lateWindowSeconds: 86400,
  ...over,
});
const transfer = (amount: bigint, blockNumber: number, seconds = 10): TransferView => ({ amount, blockNumber, blockTimestamp: at(seconds) });

describe('payments stateMachine', () => {
  it('allows only the documented transitions', () => {
    expect(canTransition('pending', 'confirming')).to.equal(true);
    expect(canTransition('confirming', 'confirmed')).to.equal(true);
    expect(canTransition('confirmed', 'pending')).to.equal(false);
    expect(canTransition('canceled', 'confirming')).to.equal(false);
    expect(() => assertTransition('settled', 'pending')).to.throw(IllegalTransitionError);
  });

  it('stays pending with nothing received before expiry', () => {
    const d = decidePayment(payment(), [], { finalThrough: 100, tipTimestamp: at(100) });
    expect(d).to.deep.equal({ status: 'pending', exception: null, amountReceived: 0n, events: [] });
  });

  it('moves to confirming when a transfer is seen, not yet final', () => {
    const d = decidePayment(payment(), [transfer(1000n, 10)], { finalThrough: 9, tipTimestamp: at(20) });
    expect(d.status).to.equal('confirming');
    expect(d.events).to.deep.equal(['payment.confirming']);
    expect(d.amountReceived).to.equal(1000n);
  });

  it('confirms once the counted amount is final', () => {
    const d = decidePayment(payment({ status: 'confirming', amountReceived: 1000n }), [transfer(1000n, 10)], { finalThrough: 10, tipTimestamp: at(30) });
    expect(d.status).to.equal('confirmed');
    expect(d.events).to.deep.equal(['payment.confirmed']);
  });

  it('adds up several transfers, and confirms only when the sum is final', () => {
    const ts = [transfer(400n, 10), transfer(600n, 12)];
    expect(decidePayment(payment({ status: 'confirming' }), ts, { finalThrough: 11, tipTimestamp: at(30) }).status).to.equal('confirming');
    expect(decidePayment(payment({ status: 'confirming' }), ts, { finalThrough: 12, tipTimestamp: at(30) }).status).to.equal('confirmed');
  });

  it('never expires before the chain clock passes expires_at', () => {
    const d = decidePayment(payment(), [], { finalThrough: 100, tipTimestamp: at(899) });
    expect(d.status).to.equal('pending');
    expect(decidePayment(payment(), [], { finalThrough: 100, tipTimestamp: null }).status).to.equal('pending');
  });

  it('expires with nothing received once the chain passed expiry', () => {
    const d = decidePayment(payment(), [], { finalThrough: 100, tipTimestamp: at(901) });
    expect(d).to.include({ status: 'expired', exception: null });
    expect(d.events).to.deep.equal(['payment.expired']);
  });

  it('expires as underpaid when too little arrived in time', () => {
    const d = decidePayment(payment({ status: 'confirming', amountReceived: 500n }), [transfer(500n, 10)], { finalThrough: 100, tipTimestamp: at(901) });
    expect(d).to.include({ status: 'expired', exception: 'underpaid' });
    expect(d.events).to.deep.equal(['payment.expired', 'payment.underpaid']);
  });

  it('accepts a shortfall within the tolerance', () => {
    const d = decidePayment(payment({ underpaidTolerance: 10n }), [transfer(990n, 10)], { finalThrough: 10, tipTimestamp: at(20) });
    expect(d.status).to.equal('confirmed');
  });

  it('marks an overpayment and reports it', () => {
    const d = decidePayment(payment(), [transfer(1500n, 10)], { finalThrough: 10, tipTimestamp: at(20) });
    expect(d).to.include({ status: 'confirmed', exception: 'overpaid' });
    expect(d.events).to.deep.equal(['payment.confirming', 'payment.confirmed', 'payment.overpaid']);
  });

  it('a payment paid in time but awaiting confirmations does not expire', () => {
    const d = decidePayment(payment({ status: 'confirming' }), [transfer(1000n, 10, 800)], { finalThrough: 5, tipTimestamp: at(2000) });
    expect(d.status).to.equal('confirming');
  });

  it('funds after expiry are paid_late, never confirmed on their own', () => {
    const d = decidePayment(payment({ status: 'expired' }), [transfer(1000n, 50, 1000)], { finalThrough: 100, tipTimestamp: at(1100) });
    expect(d).to.include({ status: 'expired', exception: 'paid_late' });
    expect(d.events).to.deep.equal(['payment.late']);
  });

  it('funds after the monitoring window are recorded but do not make the payment paid_late', () => {
    const d = decidePayment(payment({ status: 'expired', lateWindowSeconds: 3600 }), [transfer(1000n, 50, 900 + 3601)], { finalThrough: 100, tipTimestamp: at(5000) });
    expect(d).to.include({ status: 'expired', exception: null, amountReceived: 1000n });
    expect(d.events).to.deep.equal([]);
  });

  it('goes back to pending when a reorg removes every transfer', () => {
    const d = decidePayment(payment({ status: 'confirming', amountReceived: 1000n }), [], { finalThrough: 5, tipTimestamp: at(30) });
    expect(d.status).to.equal('pending');
    expect(d.events).to.deep.equal(['payment.reorged']);
  });

  it('keeps confirming with a lower amount when a reorg removes one of two transfers', () => {
    const d = decidePayment(payment({ status: 'confirming', amountReceived: 1000n }), [transfer(400n, 10)], { finalThrough: 5, tipTimestamp: at(30) });
    expect(d).to.include({ status: 'confirming', amountReceived: 400n });
    expect(d.events).to.deep.equal(['payment.reorged']);
  });

  it('never moves a confirmed, settled or canceled payment', () => {
    for (const status of ['confirmed', 'settled', 'canceled'] as const) {
      const d = decidePayment(payment({ status, amountReceived: 1000n }), [], { finalThrough: 100, tipTimestamp: at(2000) });
      expect(d.status).to.equal(status);
      expect(d.events).to.deep.equal([]);
    }
  });

  it('a transfer mined in time but seen after the expiry sweep brings the payment back', () => {
    const d = decidePayment(payment({ status: 'expired' }), [transfer(1000n, 10, 899)], { finalThrough: 5, tipTimestamp: at(1000) });
    expect(d.status).to.equal('confirming');
  });
});
