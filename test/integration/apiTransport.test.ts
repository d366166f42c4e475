import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { call, clearOfRateLimitEdge, createTestMerchant, startGateway, stopChild, waitFor, type Gateway } from '../support/gateway.js';
import { expectMatchesSpec } from '../support/apiSchema.js';

/**
 * What the API does at its edge, on real processes: rate limits in Redis (per key, read/write budgets, per IP,
 * X-Forwarded-For only with TRUST_PROXY), HTTP/2 (h2c and TLS, with Node's own http2 client), and logs that never
 * carry a secret.
 */
describe('API transport: rate limits, proxies, HTTP/2, logs', function () {
  this.timeout(120_000);
  let gw: Gateway;
  let shop: { id: string; api_key: string };

  before(async () => {
    gw = await startGateway({ env: { RATE_LIMIT_READ: '5', RATE_LIMIT_WRITE: '3', RATE_LIMIT_PER_IP: '60', TRUST_PROXY: 'true', API_KEY_CACHE_TTL_MS: '60000' } });
    shop = await createTestMerchant(gw, 'Limited Shop');
  });
  after(async () => {
    await gw?.stop();
  });

  /** Another API process on the gateway's database and Redis, with its own env and port; its output is kept whole. */
  async function spawnApi(env: Record<string, string>, protocol: 'http' | 'https' = 'http') {
    const api = await gw.startApi(env);
    return { url: `${protocol}://127.0.0.1:${api.port}`, child: api.child, output: api.output };
  }

  describe('rate limits', () => {
    // These spend budgets and then expect 429s (≈ 1 s in all): clear of a bucket's edge.
    before(() => clearOfRateLimitEdge());

    it('limits reads per API key: 429 with Retry-After and X-RateLimit-* once the budget is spent', async () => {
      const seen: number[] = [];
      for (let i = 0; i < 5; i++) {
        const res = await call(gw, 'GET', '/api/v1/payments', { auth: shop.api_key });
        expect(res.status).to.equal(200);
        expect(res.headers.get('x-ratelimit-limit')).to.equal('5');
        seen.push(Number(res.headers.get('x-ratelimit-remaining')));
        const reset = Number(res.headers.get('x-ratelimit-reset'));
        expect(reset).to.be.within(Date.now() / 1000 - 1, Date.now() / 1000 + 61);
      }
      expect(seen).to.deep.equal([4, 3, 2, 1, 0]);
      const limited = await call(gw, 'GET', '/api/v1/payments', { auth: shop.api_key });
      expectMatchesSpec('GET', '/api/v1/payments', limited);
      expect(limited.status).to.equal(429);
      expect(limited.body.error).to.include({ type: 'rate_limit_error', code: 'rate_limited' });
      expect(Number(limited.headers.get('retry-after'))).to.be.within(1, 60);
      expect(limited.headers.get('x-ratelimit-remaining')).to.equal('0');
    });

    it('gives writes their own budget, and each key its own', async () => {
      for (let i = 0; i < 3; i++) {
        const res = await call(gw, 'POST', '/api/v1/payments', { auth: shop.api_key, body: { amount: '1', currency: 'ETH' } });
        expect(res.status, JSON.stringify(res.body)).to.equal(201);
        expect(res.headers.get('x-ratelimit-limit')).to.equal('3');
      }
      const limited = await call(gw, 'POST', '/api/v1/payments', { auth: shop.api_key, body: { amount: '1', currency: 'ETH', metadata: { over: 'budget' } } });
      expect(limited.status).to.equal(429);
      expect(await gw.db('payments').whereRaw(`metadata->>'over' = 'budget'`).count('* as n').first()).to.deep.equal({ n: 0 });
      const second = await call(gw, 'POST', `/admin/v1/merchants/${shop.id}/keys`, { auth: gw.adminToken, body: {} });
      expect((await call(gw, 'GET', '/api/v1/payments', { auth: second.body.key })).status).to.equal(200);
      // A JWT counts against the key that issued it: the exhausted key's token is limited too.
      const token = await call(gw, 'POST', '/api/v1/auth/token', { body: { api_key: shop.api_key } });
      expect((await call(gw, 'GET', '/api/v1/payments', { auth: token.body.token })).status).to.equal(429);
    });

    it('does not limit /health or admin routes by merchant budgets', async () => {
      for (let i = 0; i < 20; i++) {
        expect((await call(gw, 'GET', '/health')).status).to.equal(200);
        expect((await call(gw, 'GET', `/admin/v1/merchants/${shop.id}/keys`, { auth: gw.adminToken })).status).to.equal(200);
      }
    });

    it('limits per client IP, taking the IP from X-Forwarded-For under TRUST_PROXY', async () => {
      const from = (ip: string) => call(gw, 'GET', '/api/v1/chains', { headers: { 'x-forwarded-for': ip } });
      for (let i = 0; i < 60; i++) expect((await from('203.0.113.7')).status).to.equal(401);
      const limited = await from('203.0.113.7');
      expect(limited.status).to.equal(429);
      expect(limited.headers.get('retry-after')).to.be.a('string');
      expect((await from('203.0.113.8')).status).to.equal(401);
      // The client is the address our proxy appended (right-most, TRUST_PROXY_HOPS=1): what the client itself
      // wrote to the left of it is not believed, so prepending addresses does not escape the limit.
      expect((await from('198.51.100.200, 203.0.113.7')).status).to.equal(429);
      expect((await from('203.0.113.7, 198.51.100.201')).status).to.equal(401);
    });

    it('paths are case-sensitive: /API/v1/… is no way round the per-IP limit', async () => {
      const ip = { 'x-forwarded-for': '203.0.113.90' };
      for (let i = 0; i < 60; i++) expect((await call(gw, 'GET', '/api/v1/chains', { headers: ip })).status).to.equal(401);
      expect((await call(gw, 'GET', '/api/v1/chains', { headers: ip })).status).to.equal(429);
      // Once these reached the routes (which matched regardless of case) while the limit, keyed on `/api/`, let
      // them by: a guess at an API key per request, unlimited.
      for (const path of ['/API/v1/chains', '/Api/v1/payments']) {
        const res = await call(gw, 'GET', path, { headers: ip });
        expect(res.status, path).to.equal(404);
        expect(res.body.error.code, path).to.equal('route_not_found');
      }
      expect((await call(gw, 'GET', '/api/V1/chains', { headers: ip })).status).to.equal(429);
    });

    it('a verified API key is bounded by its own budget, not by its IP: it neither spends nor is refused the IP budget', async () => {
      const key = (await call(gw, 'POST', `/admin/v1/merchants/${shop.id}/keys`, { auth: gw.adminToken, body: {} })).body.key as string;
      const ip = { 'x-forwarded-for': '203.0.113.50' };
      const withKey = () => call(gw, 'GET', '/api/v1/chains', { auth: key, headers: ip });
      // 4 of the key's 5 reads; only the first, made before this process had verified the key, counts for the IP.
      for (let i = 0; i < 4; i++) expect((await withKey()).status).to.equal(200);
      for (let i = 0; i < 59; i++) expect((await call(gw, 'GET', '/api/v1/chains', { headers: ip })).status, `anonymous request ${i + 1}`).to.equal(401);
      expect((await call(gw, 'GET', '/api/v1/chains', { headers: ip })).status).to.equal(429);
      expect((await withKey()).status).to.equal(200);
      expect((await withKey()).status).to.equal(429); // now the key's own budget is spent
      // A key this process has not verified yet is a guess like any other: the exhausted IP refuses it.
      const fresh = (await call(gw, 'POST', `/admin/v1/merchants/${shop.id}/keys`, { auth: gw.adminToken, body: {} })).body.key as string;
      expect((await call(gw, 'GET', '/api/v1/chains', { auth: fresh, headers: ip })).status).to.equal(429);
    });

    // Without TRUST_PROXY, X-Forwarded-For is ignored: see the logs test below (one more API process would cost ~10 s).
  });

  describe('HTTP/2', () => {
    const h2request = (session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: string) =>
      new Promise<{ status: number; headers: http2.IncomingHttpHeaders; body: string }>((resolve, reject) => {
        const req = session.request(headers);
        let data = '';
        let responseHeaders: http2.IncomingHttpHeaders = {};
        req.on('response', (h) => (responseHeaders = h));
        req.setEncoding('utf8');
        req.on('data', (c) => (data += c));
        req.on('end', () => resolve({ status: Number(responseHeaders[':status']), headers: responseHeaders, body: data }));
        req.on('error', reject);
        req.end(body);
      });

    it('speaks h2c (prior knowledge) and HTTP/1.1 on the same port', async () => {
      const other = await createTestMerchant(gw, 'H2 Shop');
      const session = http2.connect(gw.apiUrl);
      try {
        const health = await h2request(session, { ':path': '/health' });
        expect(health.status).to.equal(200);
        expect(JSON.parse(health.body)).to.deep.equal({ status: 'ok' });
        const created = await h2request(
          session,
          { ':method': 'POST', ':path': '/api/v1/payments', authorization: `Bearer ${other.api_key}`, 'content-type': 'application/json', 'idempotency-key': 'h2-1' },
          JSON.stringify({ amount: '0.5', currency: 'ETH' }),
        );
        expect(created.status, created.body).to.equal(201);
        expectMatchesSpec('POST', '/api/v1/payments', { status: created.status, body: JSON.parse(created.body) });
        const read = await h2request(session, { ':path': `/api/v1/payments/${JSON.parse(created.body).id}`, authorization: `Bearer ${other.api_key}` });
        expect(read.status).to.equal(200);
        expect(JSON.parse(read.body).id).to.equal(JSON.parse(created.body).id);
      } finally {
        session.close();
      }
      expect((await call(gw, 'GET', '/health')).status).to.equal(200);
    });

    it('serves HTTPS with HTTP/2 (ALPN) and HTTP/1.1 when TLS_CERT_FILE / TLS_KEY_FILE are set', async () => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'payflow-tls-'));
      const cert = path.join(dir, 'cert.pem');
      const key = path.join(dir, 'key.pem');
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert,
        '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
      const api = await spawnApi({ TLS_CERT_FILE: cert, TLS_KEY_FILE: key }, 'https');
      const ca = readFileSync(cert);
      const session = http2.connect(api.url, { ca });
      try {
        const health = await h2request(session, { ':path': '/health' });
        expect(health.status).to.equal(200);
        expect(session.alpnProtocol).to.equal('h2');
        const chains = await h2request(session, { ':path': '/api/v1/chains', authorization: `Bearer ${shop.api_key}x` });
        expect(chains.status).to.equal(401);
        expect(JSON.parse(chains.body).error.type).to.equal('authentication_error');
      } finally {
        session.close();
      }
      const h1 = await new Promise<{ status: number; version: string }>((resolve, reject) => {
        https.get(`${api.url}/health`, { ca }, (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode!, version: res.httpVersion }));
        }).on('error', reject);
      });
      expect(h1).to.deep.equal({ status: 200, version: '1.1' });

      // SIGTERM drains: a request in flight (body half sent) still gets its answer, then the process exits 0.
      const payload = JSON.stringify({ api_key: 'sk_test_' + 'x'.repeat(32) });
      const inFlight = new Promise<number>((resolve, reject) => {
        const req = https.request(`${api.url}/api/v1/auth/token`, { method: 'POST', ca, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode!));
        });
        req.on('error', reject);
        req.write(payload.slice(0, 10));
        setTimeout(() => {
          api.child.kill('SIGTERM');
          setTimeout(() => req.end(payload.slice(10)), 300);
        }, 300);
      });
      const exited = new Promise<number | null>((resolve) => api.child.once('exit', (code) => resolve(code)));
      expect(await inFlight).to.equal(401);
      expect(await exited).to.equal(0);
    });
  });

  describe('logs', () => {
    it('logs requests with ids and client IPs at debug level, never a secret; without TRUST_PROXY X-Forwarded-For is ignored', async () => {
      const api = await spawnApi({
        LOG_LEVEL: 'debug', LOG_PRETTY: 'false', TRUST_PROXY: 'false', RATE_LIMIT_PER_IP: '20', RATE_LIMIT_READ: '1000', RATE_LIMIT_WRITE: '1000',
        QUEUE_PREFIX: `${gw.env.QUEUE_PREFIX}-logs`,
      });
      const target = { apiUrl: api.url };
      const merchant = await call(target, 'POST', '/admin/v1/merchants', { auth: gw.adminToken, body: { name: 'Logged Shop' } });
      const apiKey: string = merchant.body.api_key;
      const token: string = (await call(target, 'POST', '/api/v1/auth/token', { body: { api_key: apiKey } })).body.token;
      await call(target, 'GET', '/api/v1/payments', { auth: token, headers: { 'x-request-id': 'req-logged-1', 'x-forwarded-for': '203.0.113.99' } });
      await call(target, 'GET', '/api/v1/payments', { auth: apiKey, headers: { cookie: `session=${apiKey}` } });
      const endpoint = await call(target, 'POST', '/api/v1/webhook-endpoints', { auth: apiKey, body: { url: 'http://127.0.0.1:9/hook' } });
      const webhookSecret: string = endpoint.body.secret;
      expect(webhookSecret).to.match(/^whsec_/);
      await call(target, 'POST', '/api/v1/payments', { auth: apiKey, rawBody: '{"amount":', headers: { 'content-type': 'application/json' } });
      await call(target, 'GET', '/api/v1/payments', { auth: `${apiKey}-wrong` });
      // Every request so far came from 127.0.0.1; distinct forwarded addresses do not get budgets of their own.
      let status = 0;
      for (let i = 0; i < 21 && status !== 429; i++) {
        status = (await call(target, 'GET', '/api/v1/chains', { headers: { 'x-forwarded-for': `198.51.100.${i + 1}` } })).status;
      }
      expect(status, 'per-IP limit reached although every request named another X-Forwarded-For').to.equal(429);
      await waitFor(async () => api.output().includes('req-logged-1'), 10_000, () => api.output().slice(-2000));
      await stopChild(api.child);
      const logs = api.output();

      // The log is there and says useful things...
      expect(logs).to.include('"requestId":"req-logged-1"');
      expect(logs).to.match(/"ip":"(::ffff:)?127\.0\.0\.1"[^\n]*"requestId":"req-logged-1"|"requestId":"req-logged-1"[^\n]*"ip":"(::ffff:)?127\.0\.0\.1"/);
      expect(logs).not.to.match(/"ip":"203\.0\.113\.99"/); // the forwarded address is not taken as the client's
      expect(logs).not.to.match(/"ip":"198\.51\.100\./);
      expect(logs).to.include('"msg":"configuration"');
      expect(logs).to.include('[redacted]');
      // ...but none of these, wherever they were (headers, config, bodies).
      const secrets: Record<string, string> = { apiKey, token, webhookSecret, tokenSignature: token.split('.')[2] };
      for (const [name, value] of Object.entries(gw.env)) {
        if (/TOKEN|SECRET|MNEMONIC|PASSWORD|PRIVATE|_KEY$/.test(name) && value.length >= 8) secrets[name] = value;
      }
      const dbPassword = new URL(gw.env.DATABASE_URL).password;
      if (dbPassword) secrets.DATABASE_URL_password = dbPassword;
      expect(Object.keys(secrets)).to.include.members(['ADMIN_TOKEN', 'JWT_SECRET', 'WEBHOOK_SECRETS_KEY', 'HD_MNEMONIC']);
      for (const [name, value] of Object.entries(secrets)) {
        expect(logs.includes(value), `${name} appears in the API log`).to.equal(false);
      }
    });
  });
});
