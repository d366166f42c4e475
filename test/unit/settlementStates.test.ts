import { expect } from 'chai';
import { PAYMENT_EVENT_TYPES, PAYMENT_STATUSES, canTransition, decidePayment } from '../../shared/payments/stateMachine.js';

describe('settlement states (stateMachine)', () => {
  it('settled is reached only from confirmed, refunded only from expired; both are final', () => {
    for (const from of PAYMENT_STATUSES) {
      expect(canTransition(from, 'settled'), `${from} → settled`).to.equal(from === 'confirmed');
      expect(canTransition(from, 'refunded'), `${from} → refunded`).to.equal(from === 'expired');
    }
    for (const to of PAYMENT_STATUSES) {
      expect(canTransition('settled', to)).to.equal(false);
      expect(canTransition('refunded', to)).to.equal(false);
    }
    expect(PAYMENT_EVENT_TYPES).to.include.members(['payment.settled', 'payment.refunded']);
  });

  it('the chain never moves a refunded payment again, whatever arrives', () => {
    const decision = decidePayment(
      { status: 'refunded', exception: 'paid_late', amount: 100n, underpaidTolerance: 0n, amountReceived: 100n, expiresAt: new Date(0), lateWindowSeconds: 86_400 },
      [{ amount: 500n, blockNumber: 1, blockTimestamp: new Date(0) }],
      { finalThrough: 10, tipTimestamp: new Date(1000) },
    );
    expect(decision.status).to.equal('refunded');
    expect(decision.events).to.deep.equal([]);
  });
});
