import { expect } from 'chai';
import { call, createTestMerchant, startGateway, waitFor, type Gateway } from '../support/gateway.js';
import { startWebhookTarget } from '../support/webhookTarget.js';
import { createWebhookPoster, WebhookTransportError } from '../../workers/webhooks/postWebhook.js';

/**
 * SSRF: with ALLOW_PRIVATE_WEBHOOK_URLS=false (the production default) webhook URLs reaching loopback, private,
 * link-local, CGNAT or metadata addresses are refused at registration, and again at delivery, where the check is
 * on the address actually connected to (so a DNS answer that changed after registration is caught).
 */
describe('webhooks: SSRF guard at registration and at delivery', function () {
  this.timeout(120_000);
  let gw: Gateway;
  let target: Awaited<ReturnType<typeof startWebhookTarget>>;

  before(async () => {
    gw = await startGateway({ env: { ALLOW_PRIVATE_WEBHOOK_URLS: 'false', WEBHOOK_RETRY_SCHEDULE: '0.2' } });
    target = await startWebhookTarget();
  });
  after(async () => {
    await target?.close();
    await gw?.stop();
  });

  it('refuses private targets at registration and on PATCH with 400 url_not_allowed (param url)', async () => {
    const m = await createTestMerchant(gw);
    for (const url of [target.url, 'http://localhost:8080/hook', 'http://169.254.169.254/latest/meta-data', 'http://[::1]/hook', 'http://10.0.0.7/hook', 'http://100.64.0.1/hook', 'http://192.168.1.1/hook']) {
      const res = await call(gw, 'POST', '/api/v1/webhook-endpoints', { auth: m.api_key, body: { url } });
      expect(res.status, url).to.equal(400);
      expect(res.body.error, url).to.include({ type: 'invalid_request_error', code: 'url_not_allowed', param: 'url' });
    }
    expect(await gw.db('webhook_endpoints').where({ merchant_id: m.id }).count('* as n').first()).to.deep.equal({ n: 0 });

    const ok = await call(gw, 'POST', '/api/v1/webhook-endpoints', { auth: m.api_key, body: { url: 'https://93.184.216.34/hook' } });
    expect(ok.status).to.equal(201);
    const patch = await call(gw, 'PATCH', `/api/v1/webhook-endpoints/${ok.body.id}`, { auth: m.api_key, body: { url: target.url } });
    expect(patch.status).to.equal(400);
    expect(patch.body.error).to.include({ code: 'url_not_allowed', param: 'url' });
  });

  it('refuses at delivery an endpoint that now points inside (as after DNS rebinding): the attempt fails, nothing is sent', async () => {
    const m = await createTestMerchant(gw);
    const ep = await call(gw, 'POST', '/api/v1/webhook-endpoints', { auth: m.api_key, body: { url: 'https://93.184.216.34/hook' } });
    expect(ep.status).to.equal(201);
    // Registered while its address was public; it resolves inside now.
    await gw.db('webhook_endpoints').where({ id: ep.body.id }).update({ url: target.url.replace('127.0.0.1', 'localhost') });
    const sent = await call(gw, 'POST', `/api/v1/webhook-endpoints/${ep.body.id}/test`, { auth: m.api_key });
    expect(sent.status).to.equal(202);
    const d = await waitFor(async () => {
      const res = await call(gw, 'GET', `/api/v1/webhook-deliveries/${sent.body.delivery_id}`, { auth: m.api_key });
      return res.body.status === 'failed' && res.body;
    }, 30_000, () => gw.logs());
    expect(d.attempts).to.have.length(2);
    for (const a of d.attempts) {
      expect(a.status_code).to.equal(null);
      expect(a.error).to.match(/^address not allowed: .*127\.0\.0\.1|^address not allowed: .*::1/);
    }
    expect(target.requests).to.have.length(0);
  });

  it('the delivery agent checks the connected address: IP literals and names, private and metadata', async () => {
    const strict = createWebhookPoster({ allowPrivate: false, timeoutMs: 5000 });
    const local = createWebhookPoster({ allowPrivate: true, timeoutMs: 5000 });
    const refused = async (p: typeof strict, url: string) => {
      try {
        await p(url, {}, '{}');
      } catch (err) {
        expect(err).to.be.instanceOf(WebhookTransportError);
        return (err as WebhookTransportError).kind;
      }
      return 'sent';
    };
    expect(await refused(strict, target.url)).to.equal('address_not_allowed');
    expect(await refused(strict, target.url.replace('127.0.0.1', 'localhost'))).to.equal('address_not_allowed');
    expect(await refused(local, 'http://169.254.169.254/latest/meta-data')).to.equal('address_not_allowed');
    expect(target.requests).to.have.length(0);
    const res = await local(target.url, { 'content-type': 'application/json' }, '{"id":"evt_x","type":"t","data":null}');
    expect(res.statusCode).to.equal(200);
    expect(target.requests).to.have.length(1);
  });
});
