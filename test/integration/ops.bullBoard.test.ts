import { expect } from 'chai';
import { mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { call, createTestMerchant, startGateway, waitFor, type Gateway } from '../support/gateway.js';
import { startWebhookReceiver } from '../support/webhookReceiver.js';

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const ARTIFACTS = path.resolve('test-artifacts');

/** Bull Board at /admin/queues: admin auth in front, and a real headless Chromium that logs in and sees a job. */
describe('ops: Bull Board (/admin/queues) in a real headless Chromium', function () {
  this.timeout(120_000);
  let gw: Gateway;
  let browser: Browser | undefined;
  let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;
  const user = 'ops';
  const password = 'board-password-0123456789';

  before(async () => {
    gw = await startGateway({ env: { BULL_BOARD_USER: user, BULL_BOARD_PASSWORD: password } });
    receiver = await startWebhookReceiver();
  });
  after(async () => {
    await browser?.close();
    await receiver?.close();
    await gw?.stop();
  });

  it('answers 401 with a Basic challenge without credentials or with wrong ones', async () => {
    for (const route of ['/admin/queues', '/admin/queues/api/queues']) {
      const anonymous = await fetch(`${gw.apiUrl}${route}`);
      expect(anonymous.status, route).to.equal(401);
      expect(anonymous.headers.get('www-authenticate')).to.match(/^Basic realm=/);
      const wrongPassword = await fetch(`${gw.apiUrl}${route}`, { headers: { authorization: `Basic ${Buffer.from(`${user}:nope`).toString('base64')}` } });
      expect(wrongPassword.status).to.equal(401);
      const wrongUser = await fetch(`${gw.apiUrl}${route}`, { headers: { authorization: `Basic ${Buffer.from(`admin:${password}`).toString('base64')}` } });
      expect(wrongUser.status).to.equal(401);
      const merchantKey = await fetch(`${gw.apiUrl}${route}`, { headers: { authorization: 'Bearer sk_test_not_an_admin_token' } });
      expect(merchantKey.status).to.equal(401);
    }
  });

  it('lets the admin token (Bearer) read the queues API: every PayFlow queue with the configured prefix', async () => {
    const res = await call(gw, 'GET', '/admin/queues/api/queues', { auth: gw.adminToken });
    expect(res.status).to.equal(200);
    const names = (res.body.queues as { name: string }[]).map((q) => q.name).sort();
    expect(names).to.include.members(['chain', 'payments', 'webhooks']);
  });

  it('a browser logs in with Basic credentials, sees the queues and a webhook job, and a screenshot is saved', async () => {
    // One real job to look at: a webhook delivery for payment.created.
    const merchant = await createTestMerchant(gw);
    await call(gw, 'POST', '/api/v1/webhook-endpoints', { auth: merchant.api_key, body: { url: receiver.url } });
    const created = await call(gw, 'POST', '/api/v1/payments', { auth: merchant.api_key, body: { amount: '0.02', currency: 'ETH' } });
    expect(created.status).to.equal(201);
    await waitFor(async () => receiver.events().some((e) => e.data.id === created.body.id), 20_000, () => gw.logs());
    const delivery = await gw.db('webhook_deliveries').join('events', 'events.id', 'webhook_deliveries.event_id').where('events.payment_id', created.body.id).first('webhook_deliveries.id');

    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS, timeout: 60_000 });
    const context = await browser.newContext({ httpCredentials: { username: user, password }, viewport: { width: 1400, height: 900 } });
    const page = await context.newPage();
    const response = await page.goto(`${gw.apiUrl}/admin/queues`, { waitUntil: 'networkidle' });
    expect(response?.status()).to.equal(200);
    for (const queue of ['chain', 'payments', 'webhooks']) {
      await page.getByText(queue, { exact: true }).first().waitFor({ timeout: 30_000 });
    }

    // The completed webhook job, named by its delivery id, in the webhooks queue.
    await page.goto(`${gw.apiUrl}/admin/queues/queue/webhooks?status=completed`, { waitUntil: 'networkidle' });
    await page.getByText(`${delivery.id}-0`).first().waitFor({ timeout: 30_000 });
    mkdirSync(ARTIFACTS, { recursive: true });
    const file = path.join(ARTIFACTS, 'bull-board-webhooks.png');
    await page.screenshot({ path: file, fullPage: true });
    expect(statSync(file).size).to.be.greaterThan(10_000);

    // Without credentials the browser gets the Basic challenge (a login prompt, which headless Chromium cancels).
    const anonymous = await browser.newContext();
    const denied = await (await anonymous.newPage()).goto(`${gw.apiUrl}/admin/queues`).then(
      (r) => `status ${r?.status()}`,
      (err: Error) => err.message,
    );
    expect(denied).to.match(/ERR_INVALID_AUTH_CREDENTIALS|status 401/);
  });
});
