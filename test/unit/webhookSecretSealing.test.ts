import { expect } from 'chai';
import { createWebhookSecretBox, SealedSecretError } from '../../shared/webhooks/secretSealing.js';
import { newWebhookSecret } from '../../shared/webhooks/signature.js';

describe('webhook signing secrets sealed at rest', () => {
  const keyA = 'a'.repeat(32);
  const keyB = 'b'.repeat(32);
  const secret = newWebhookSecret();

  it('opens what it sealed, and the sealed value says nothing of the secret', () => {
    const box = createWebhookSecretBox([keyA]);
    const sealed = box.seal('we_1', secret);
    expect(sealed.startsWith(box.currentPrefix)).to.equal(true);
    expect(box.currentPrefix).to.match(/^v1\.[0-9a-f]{8}\.$/);
    expect(sealed).not.to.include(secret.slice(6));
    expect(box.open('we_1', sealed)).to.equal(secret);
    // A fresh IV each time: sealing the same secret twice gives two values.
    expect(box.seal('we_1', secret)).not.to.equal(sealed);
  });

  it('refuses a value altered, moved to another endpoint, or sealed under a key it was not given', () => {
    const box = createWebhookSecretBox([keyA]);
    const sealed = box.seal('we_1', secret);
    const body = sealed.slice(box.currentPrefix.length);
    const flipped = body.slice(0, -2) + (body.at(-2) === 'A' ? 'B' : 'A') + body.at(-1);
    expect(() => box.open('we_1', box.currentPrefix + flipped)).to.throw(SealedSecretError, /does not open/);
    expect(() => box.open('we_2', sealed)).to.throw(SealedSecretError, /we_2/);
    expect(() => createWebhookSecretBox([keyB]).open('we_1', sealed)).to.throw(SealedSecretError, /WEBHOOK_SECRETS_KEY_PREVIOUS/);
    expect(() => box.open('we_1', 'garbage')).to.throw(SealedSecretError);
  });

  it('during a rotation opens values under either key and seals under the new one only', () => {
    const old = createWebhookSecretBox([keyA]);
    const rotated = createWebhookSecretBox([keyB, keyA]);
    expect(rotated.currentPrefix).not.to.equal(old.currentPrefix);
    expect(rotated.open('we_1', old.seal('we_1', secret))).to.equal(secret);
    const resealed = rotated.seal('we_1', secret);
    expect(resealed.startsWith(rotated.currentPrefix)).to.equal(true);
    expect(createWebhookSecretBox([keyB]).open('we_1', resealed)).to.equal(secret);
  });

  it('reads a secret stored in clear before sealing existed as it is', () => {
    expect(createWebhookSecretBox([keyA]).open('we_1', secret)).to.equal(secret);
  });
});
