import { expect } from 'chai';
import { mkdirSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseUnits } from 'ethers';
import jsqrModule from 'jsqr';
import { chromium, type Browser, type Page } from 'playwright-core';
import { PNG } from 'pngjs';
import { call, clearOfRateLimitEdge, createTestMerchant, startGateway, waitFor, type Gateway } from '../support/gateway.js';
import { chainClient } from '../support/chain.js';
import { expectMatchesSpec } from '../support/apiSchema.js';

/**
 * The hosted checkout page as a paying customer sees it: real headless Chromium (Debian's), the real API and
 * worker processes, the dev chain. The customer reads the address and amount from the page, pays from a dev
 * account, and the page follows the payment to its outcome without a reload.
 *
 * Screenshots of every state go to test-artifacts/checkout/. `UPDATE_DOCS_SCREENSHOT=1` also refreshes
 * docs/checkout.png (the README's picture).
 */
// jsqr is CommonJS with an `exports.default`: under NodeNext the default import is the module object.
const jsQR = jsqrModule.default;
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const artifacts = path.join(repoRoot, 'test-artifacts', 'checkout');
const RATE_LIMIT = 150;
const MOBILE = { width: 390, height: 844 };

describe('checkout page (real Chromium, API + worker processes, dev chain)', function () {
  this.timeout(180_000);
  let gw: Gateway;
  let chain: ReturnType<typeof chainClient>;
  let merchant: { id: string; api_key: string };
  let browser: Browser;
  let port: string;

  before(async () => {
    mkdirSync(artifacts, { recursive: true });
    // TRUST_PROXY lets the rate-limit test speak as other client IPs through X-Forwarded-For.
    [gw, browser] = await Promise.all([
      startGateway({ confirmations: 2, env: { TRUST_PROXY: 'true', CHECKOUT_RATE_LIMIT: String(RATE_LIMIT) } }),
      chromium.launch({
        executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      }),
    ]);
    port = gw.env.PORT;
    chain = chainClient(gw.stack.rpcUrl, gw.stack.usdcAddress);
    merchant = await createTestMerchant(gw, 'Corner Coffee');
  });
  after(async () => {
    await browser?.close();
    await gw?.stop();
  });

  const createPayment = async (body: Record<string, unknown>) => {
    const res = await call(gw, 'POST', '/api/v1/payments', { auth: merchant.api_key, body });
    expect(res.status, JSON.stringify(res.body)).to.equal(201);
    expectMatchesSpec('POST', '/api/v1/payments', res);
    return res.body;
  };

  /** A fresh mobile-sized tab that records every request it makes and every CSP complaint. */
  async function openCheckout(url: string) {
    const context = await browser.newContext({ viewport: MOBILE });
    const page = await context.newPage();
    const requests: string[] = [];
    const cspViolations: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    page.on('console', (m) => {
      if (/Content.Security.Policy|Refused to/i.test(m.text())) cspViolations.push(m.text());
    });
    const response = await page.goto(url);
    expect(response, 'no response').to.not.equal(null);
    // Marks this document: if the page reloaded itself, the mark would be gone.
    await page.evaluate(() => ((window as unknown as { checkoutTestMark: number }).checkoutTestMark = 42));
    return { page, response: response!, requests, cspViolations, close: () => context.close() };
  }

  const stateOf = (page: Page) => page.getAttribute('#checkout', 'data-state');
  const waitForState = (page: Page, state: string) =>
    page.waitForSelector(`#checkout[data-state="${state}"]`, { timeout: 45_000 }).catch(async (err) => {
      throw new Error(`page never reached ${state} (is ${await stateOf(page)}): ${(err as Error).message}\n${gw.logs().slice(-4000)}`);
    });
  const shot = (page: Page, name: string) => page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });
  const visibleText = (page: Page, selector: string) => page.locator(selector).innerText();

  /** Decodes the QR code as the browser drew it, from a screenshot of its element. */
  async function decodeQr(page: Page): Promise<string | undefined> {
    const png = PNG.sync.read(await page.locator('#qr').screenshot());
    return jsQR(new Uint8ClampedArray(png.data.buffer, png.data.byteOffset, png.data.length), png.width, png.height)?.data;
  }

  it('gives payments an absolute checkout_url and validates success_url / cancel_url', async () => {
    const p = await createPayment({ amount: '1', currency: 'ETH', success_url: 'https://shop.example/thanks?order=7', cancel_url: 'http://shop.example/cart' });
    expect(p.checkout_url).to.equal(`http://localhost:${port}/pay/${p.id}`); // PUBLIC_URL defaults to http://localhost:$PORT
    expect(p).to.include({ success_url: 'https://shop.example/thanks?order=7', cancel_url: 'http://shop.example/cart' });
    const read = await call(gw, 'GET', `/api/v1/payments/${p.id}`, { auth: merchant.api_key });
    expect(read.body).to.include({ checkout_url: p.checkout_url, success_url: p.success_url, cancel_url: p.cancel_url });
    const plain = await createPayment({ amount: '1', currency: 'ETH' });
    expect(plain).to.include({ success_url: null, cancel_url: null });

    for (const [param, value] of [
      ['success_url', 'javascript:alert(1)'],
      ['success_url', 'ftp://shop.example/x'],
      ['cancel_url', '/relative/path'],
      ['cancel_url', `https://shop.example/${'a'.repeat(2048)}`],
      ['success_url', 42],
    ] as const) {
      const res = await call(gw, 'POST', '/api/v1/payments', { auth: merchant.api_key, body: { amount: '1', currency: 'ETH', [param]: value } });
      expect(res.status, `${param}=${String(value).slice(0, 40)}`).to.equal(400);
      expect(res.body.error).to.include({ type: 'invalid_request_error', param });
    }
  });

  it('ETH: the customer pays what the page shows and watches it confirm, without a reload', async () => {
    const p = await createPayment({
      amount: '0.0123', currency: 'ETH', order_id: 'order-881', expires_in: 900,
      success_url: 'https://shop.example/thanks', cancel_url: 'https://shop.example/cart',
    });
    const tab = await openCheckout(p.checkout_url);
    const { page } = tab;
    try {
      // (d) a strict CSP, and only same-origin requests.
      const csp = tab.response.headers()['content-security-policy'];
      expect(csp).to.match(/default-src 'none'/);
      expect(csp).to.match(/script-src 'sha256-[A-Za-z0-9+/=]+'/);
      expect(csp).to.match(/style-src 'sha256-[A-Za-z0-9+/=]+'/);
      expect(csp).to.not.match(/unsafe-inline|unsafe-eval|\*/);
      expect(tab.response.headers()['content-type']).to.match(/^text\/html/);

      expect(await stateOf(page)).to.equal('pending');
      expect(await visibleText(page, '#merchant')).to.equal('Corner Coffee');
      expect(await visibleText(page, '#chain')).to.equal('test chain');
      expect(await visibleText(page, '.st-pending')).to.match(/Waiting for your payment/);
      expect(await visibleText(page, '#countdown')).to.match(/^1[45]:\d\d$/);
      expect(await page.locator('#cancel-link').isVisible()).to.equal(true);
      expect(await page.getAttribute('#cancel-link', 'href')).to.equal('https://shop.example/cart');
      expect(await page.locator('#success-link').isVisible()).to.equal(false);
      expect(await page.locator('#copy').isVisible()).to.equal(true); // shown by the script: proof it ran under the CSP
      // Mobile width: nothing sticks out sideways.
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).to.be.at.most(MOBILE.width);
      // (c) the QR code, as drawn, is the payment's EIP-681 URI.
      expect(await decodeQr(page)).to.equal(p.payment_uri);
      await shot(page, '1-eth-pending');
      if (process.env.UPDATE_DOCS_SCREENSHOT === '1') {
        await page.screenshot({ path: path.join(repoRoot, 'docs', 'checkout.png'), fullPage: true });
      }

      // The customer copies what the page says: address and amount come from the page, not from the API.
      const address = (await visibleText(page, '#address')).trim();
      const amount = (await visibleText(page, '#amount')).trim();
      expect(await visibleText(page, '#currency')).to.equal('ETH');
      expect(address).to.equal(p.address);
      await chain.sendEth(3, address, parseUnits(amount, 18)); // automine: one block, one confirmation

      await waitForState(page, 'confirming');
      expect(await visibleText(page, '.st-confirming')).to.match(/Payment received\.\s+Confirmations: 1 of 2\./);
      expect(await page.locator('#address').isVisible()).to.equal(false); // nothing left to send
      await shot(page, '2-eth-confirming');

      await chain.mine(1);
      await waitForState(page, 'confirmed');
      expect(await visibleText(page, '.st-confirmed')).to.match(/Payment confirmed\. Thank you! Corner Coffee has been paid\./);
      expect(await page.locator('#success-link').isVisible()).to.equal(true);
      expect(await page.getAttribute('#success-link', 'href')).to.equal('https://shop.example/thanks');
      expect(await page.locator('#cancel-link').isVisible()).to.equal(false);
      expect(await page.textContent('#announce')).to.match(/Payment confirmed/); // told to screen readers too
      await shot(page, '3-eth-confirmed');

      expect(await page.evaluate(() => (window as unknown as { checkoutTestMark?: number }).checkoutTestMark)).to.equal(42);
      const origin = new URL(p.checkout_url).origin;
      expect(tab.requests.length).to.be.greaterThan(1); // the page and its status polls
      expect(tab.requests.filter((u) => new URL(u).origin !== origin), 'requests outside the origin').to.deep.equal([]);
      expect(tab.cspViolations).to.deep.equal([]);
      // The page never showed the order id or the merchant id.
      const html = await page.content();
      expect(html).to.not.include('order-881');
      expect(html).to.not.include(merchant.id);
    } finally {
      await tab.close();
    }
  });

  it('shows the expired view, and the underpaid view with the amount still due (chain clock past expiry)', async () => {
    const unpaid = await createPayment({ amount: '0.5', currency: 'ETH', expires_in: 60, cancel_url: 'https://shop.example/cart' });
    const short = await createPayment({ amount: '25', currency: 'USDC', expires_in: 60, success_url: 'https://shop.example/thanks' });
    const [a, b] = await Promise.all([openCheckout(unpaid.checkout_url), openCheckout(short.checkout_url)]);
    try {
      expect(await stateOf(a.page)).to.equal('pending');
      expect(await stateOf(b.page)).to.equal('pending');
      // The token payment's QR is the ERC-20 transfer URI.
      expect(short.payment_uri).to.match(/\/transfer\?address=/);
      expect(await decodeQr(b.page)).to.equal(short.payment_uri);
      expect(await visibleText(b.page, '#token-address')).to.equal(gw.stack.usdcAddress);
      await shot(b.page, '4-usdc-pending');

      // 10 of 25 USDC, in time: still open, 15 due.
      const amount = parseUnits((await visibleText(b.page, '#amount')).trim(), 6);
      await chain.sendUsdc(4, (await visibleText(b.page, '#address')).trim(), amount - 15_000_000n);
      await waitFor(async () => (await b.page.locator('.st-confirming .when-partial').isVisible()) || undefined, 45_000, () => gw.logs().slice(-4000));
      expect(await visibleText(b.page, '.st-confirming')).to.match(/Received 10 USDC; 15 USDC still due\./);
      expect(await visibleText(b.page, '.send')).to.match(/Send the remaining 15 USDC/);
      expect(await b.page.locator('#qr').isVisible()).to.equal(false); // its URI asks for the full amount
      expect(await b.page.locator('#open-wallet').isVisible()).to.equal(false);
      await shot(b.page, '5-usdc-partially-paid');

      await chain.increaseTime(120); // PayFlow expires by the chain's clock (this gateway's own dev chain)
      await Promise.all([waitForState(a.page, 'expired'), waitForState(b.page, 'underpaid')]);

      expect(await visibleText(a.page, '.st-expired')).to.match(/This payment has expired/);
      expect(await a.page.locator('#address').isVisible()).to.equal(false);
      expect(await a.page.locator('#cancel-link').isVisible()).to.equal(false);
      expect(await a.page.locator('.countdown-line').isVisible()).to.equal(false);
      await shot(a.page, '6-eth-expired');

      expect(await visibleText(b.page, '.st-underpaid')).to.match(/expired after receiving 10 USDC: 15 USDC is still due/);
      expect(await b.page.locator('#success-link').isVisible()).to.equal(false);
      await shot(b.page, '7-usdc-underpaid');

      const status = await call(gw, 'GET', `/pay/${short.id}/status`);
      expectMatchesSpec('GET', '/pay/{id}/status', status);
      expect(status.body).to.include({ state: 'underpaid', status: 'expired', exception: 'underpaid', amount_due: '15', amount_received: '10' });
      for (const tab of [a, b]) {
        expect(tab.cspViolations).to.deep.equal([]);
        expect(await tab.page.evaluate(() => (window as unknown as { checkoutTestMark?: number }).checkoutTestMark)).to.equal(42);
      }
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('answers unknown ids with a plain HTML 404, and the status endpoint shows nothing secret', async () => {
    for (const id of ['pay_AAAAAAAAAAAAAAAAAAAAAA', 'pay_AAAAAAAAAAAAAAAAAAAAAAAA', 'pay_short', 'mer_AAAAAAAAAAAAAAAAAAAAAA', '%3Cscript%3E']) {
      const res = await fetch(`${gw.apiUrl}/pay/${id}`);
      expect(res.status, id).to.equal(404);
      expect(res.headers.get('content-type')).to.match(/^text\/html/);
      expect(res.headers.get('content-security-policy')).to.match(/default-src 'none'/);
      const body = await res.text();
      expect(body).to.match(/<h1>Payment not found<\/h1>/);
      expect(body).to.not.include('<script');
    }
    const missing = await call(gw, 'GET', '/pay/pay_AAAAAAAAAAAAAAAAAAAAAA/status');
    expect(missing.status).to.equal(404);
    expectMatchesSpec('GET', '/pay/{id}/status', missing);
    expect(missing.body.error).to.include({ type: 'not_found_error' });

    const p = await createPayment({
      amount: '7.25', currency: 'USDC', order_id: 'order-secret-77', metadata: { internal_note: 'vip-customer-s3cr3t' },
      success_url: 'https://shop.example/thanks',
    });
    const res = await call(gw, 'GET', `/pay/${p.id}/status`);
    expect(res.status).to.equal(200);
    expectMatchesSpec('GET', '/pay/{id}/status', res);
    expect(res.headers.get('cache-control')).to.equal('no-cache');
    expect(Object.keys(res.body).sort()).to.deep.equal([
      'amount', 'amount_due', 'amount_received', 'confirmations', 'confirmations_required', 'currency', 'exception',
      'expires_at', 'partially_paid', 'state', 'status',
    ]);
    expect(res.body).to.include({ state: 'pending', amount: '7.25', amount_due: '7.25', currency: 'USDC', confirmations: 0, confirmations_required: 2 });
    const raw = JSON.stringify(res.body);
    for (const secret of [merchant.id, 'order-secret-77', 'vip-customer-s3cr3t', 'internal_note']) expect(raw).to.not.include(secret);
    // Unchanged status: a revalidating poll (as the browser's cache sends it) is a bodiless 304. Not with fetch():
    // it adds `Cache-Control: no-cache` to conditional requests, which rightly forces a full answer.
    const again = await new Promise<number | undefined>((resolve, reject) =>
      httpGet(`${gw.apiUrl}/pay/${p.id}/status`, { headers: { 'if-none-match': res.headers.get('etag')! } }, (r) => {
        r.resume();
        resolve(r.statusCode);
      }).on('error', reject),
    );
    expect(again).to.equal(304);

    const page = await (await fetch(`${gw.apiUrl}/pay/${p.id}`)).text();
    for (const secret of [merchant.id, 'order-secret-77', 'vip-customer-s3cr3t']) expect(page).to.not.include(secret);

    // A merchant's name is text, never markup.
    const odd = await createTestMerchant(gw, `Tom & Jerry's <script>alert(1)</script>`);
    const oddPayment = await call(gw, 'POST', '/api/v1/payments', { auth: odd.api_key, body: { amount: '1', currency: 'ETH' } });
    const oddPage = await (await fetch(oddPayment.body.checkout_url)).text();
    expect(oddPage).to.include('Tom &amp; Jerry&#39;s &lt;script&gt;alert(1)&lt;/script&gt;');
    expect(oddPage).to.not.include('<script>alert');
  });

  it('rate limits each client IP', async () => {
    const p = await createPayment({ amount: '1', currency: 'ETH' });
    const from = (ip: string) => fetch(`${gw.apiUrl}/pay/${p.id}/status`, { headers: { 'x-forwarded-for': ip } });
    const statuses: number[] = [];
    await clearOfRateLimitEdge(); // the budget is spent and refused within one bucket
    for (let i = 0; i < RATE_LIMIT + 1; i++) statuses.push((await from('203.0.113.9')).status);
    expect(statuses.slice(0, RATE_LIMIT).every((s) => s === 200), 'the first requests pass').to.equal(true);
    expect(statuses[RATE_LIMIT]).to.equal(429);

    const blocked = await from('203.0.113.9');
    expect(blocked.status).to.equal(429);
    expect(Number(blocked.headers.get('retry-after'))).to.be.within(1, 60);
    expect((await blocked.json()).error).to.include({ type: 'rate_limit_error' });
    const page = await fetch(`${gw.apiUrl}/pay/${p.id}`, { headers: { 'x-forwarded-for': '203.0.113.9' } });
    expect(page.status).to.equal(429);
    expect(await page.text()).to.match(/Too many requests/);
    // Another customer is not affected.
    expect((await from('198.51.100.4')).status).to.equal(200);
  });
});
