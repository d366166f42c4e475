import { createHash } from 'node:crypto';
import http from 'node:http';
import { expect } from 'chai';
import jsonwebtoken from 'jsonwebtoken';
import { call, createTestMerchant, startGateway, waitFor, type Gateway, type HttpResult } from '../support/gateway.js';
import { expectMatchesSpec, schemaChecks } from '../support/apiSchema.js';

/**
 * The merchant API's guarantees, against a real API process and Postgres: idempotency, order_id uniqueness,
 * cancel, the events API, cursor pagination under concurrent inserts, API keys (scopes, rotation, revocation and
 * its cache), JWTs, and HTTP behaviour (ETag, compression, CORS, security headers). Every response looked at is
 * also checked against docs/openapi.json.
 */
describe('merchant API', function () {
  this.timeout(120_000);
  let gw: Gateway;
  let alice: { id: string; api_key: string };
  let bob: { id: string; api_key: string };

  before(async () => {
    gw = await startGateway({ env: { API_KEY_CACHE_TTL_MS: '2000', CORS_ORIGINS: 'https://shop.example' } });
    alice = await createTestMerchant(gw, 'Alice');
    bob = await createTestMerchant(gw, 'Bob');
  });
  after(async () => gw?.stop());

  /** A call whose response must match the document. */
  async function api(method: string, route: string, documented: string, opts: Parameters<typeof call>[3] = {}): Promise<HttpResult> {
    const res = await call(gw, method, route, opts);
    expectMatchesSpec(method, documented, res);
    return res;
  }
  const rawGet = (route: string, headers: Record<string, string>) =>
    new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
      http.get(`${gw.apiUrl}${route}`, { headers }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      }).on('error', reject);
    });
  const stored = (key: string) => createHash('sha256').update(key).digest('hex');
  const countPayments = async (where: Record<string, unknown> | string) =>
    Number((await (typeof where === 'string' ? gw.db('payments').whereRaw(where) : gw.db('payments').where(where)).count('* as n').first())!.n);

  describe('Idempotency-Key', () => {
    it('replays the first response for the same key and body (in any key order), with Idempotent-Replayed', async () => {
      const body = { amount: '0.25', currency: 'ETH', metadata: { cart: 'idem-1', n: 1 } };
      const first = await api('POST', '/api/v1/payments', '/api/v1/payments', { auth: alice.api_key, body, headers: { 'idempotency-key': 'idem-1' } });
      expect(first.status).to.equal(201);
      expect(first.headers.get('idempotent-replayed')).to.equal(null);
      const reordered = { metadata: { n: 1, cart: 'idem-1' }, currency: 'ETH', amount: '0.25' };
      const again = await api('POST', '/api/v1/payments', '/api/v1/payments', { auth: alice.api_key, body: reordered, headers: { 'idempotency-key': 'idem-1' } });
      expect(again.status).to.equal(201);
      expect(again.headers.get('idempotent-replayed')).to.equal('true');
      expect(again.body).to.deep.equal(first.body);
      expect(await countPayments(`metadata->>'cart' = 'idem-1'`)).to.equal(1);
      const row = await gw.db('idempotency_keys').where({ scope: alice.id, key: stored('idem-1') }).first();
      expect(row.status).to.equal('completed');
      expect(row.response_status).to.equal(201);
    });

    it('answers 422 idempotency_key_reused for the same key with another body or route, and writes nothing', async () => {
      const before = await countPayments({ merchant_id: alice.id });
      const other = await api('POST', '/api/v1/payments', '/api/v1/payments', { auth: alice.api_key, body: { amount: '0.26', currency: 'ETH' }, headers: { 'idempotency-key': 'idem-1' } });
      expect(other.status).to.equal(422);
      expect(other.body.error.code).to.equal('idempotency_key_reused');
      const route = await api('POST', '/api/v1/webhook-endpoints', '/api/v1/webhook-endpoints', { auth: alice.api_key, body: { url: 'http://127.0.0.1:9/h' }, headers: { 'idempotency-key': 'idem-1' } });
      expect(route.status).to.equal(422);
      expect(await countPayments({ merchant_id: alice.id })).to.equal(before);
      expect(await gw.db('webhook_endpoints').where({ merchant_id: alice.id }).count('* as n').first()).to.deep.equal({ n: 0 });
    });

    it('scopes keys per merchant', async () => {
      const res = await api('POST', '/api/v1/payments', '/api/v1/payments', { auth: bob.api_key, body: { amount: '0.25', currency: 'ETH', metadata: { cart: 'idem-1' } }, headers: { 'idempotency-key': 'idem-1' } });
      expect(res.status).to.equal(201);
      expect(res.headers.get('idempotent-replayed')).to.equal(null);
      expect(await countPayments(`metadata->>'cart' = 'idem-1'`)).to.equal(2);
    });

    it('does not keep a validation error: the fixed request with the same key runs', async () => {
      const bad = await api('POST', '/api/v1/payments', '/api/v1/payments', { auth: alice.api_key, body: { amount: 'x', currency: 'ETH' }, headers: { 'idempotency-key': 'idem-fix' } });
      expect(bad.status).to.equal(400);
      const good = await api('POST', '/api/v1/payments', '/api/v1/payments', { auth: alice.api_key, body: { amount: '1', currency: 'ETH' }, headers: { 'idempotency-key': 'idem-fix' } });
      expect(good.status).to.equal(201);
    });

    it('rejects a malformed key with 400 naming the header', async () => {
      const res = await api('POST', '/api/v1/payments', '/api/v1/payments', { auth: alice.api_key, body: { amount: '1', currency: 'ETH' }, headers: { 'idempotency-key': 'x'.repeat(256) } });
      expect(res.status).to.equal(400);
      expect(res.body.error.param).to.equal('Idempotency-Key');
    });

    it('creates one object for N concurrent requests with one key; all answer with it', async () => {
      const body = { amount: '0.5', currency: 'ETH', metadata: { cart: 'race-idem' } };
      const responses = await Promise.all(
        Array.from({ length: 10 }, () => call(gw, 'POST', '/api/v1/payments', { auth: alice.api_key, body, headers: { 'idempotency-key': 'race-1' } })),
      );
      for (const r of responses) expectMatchesSpec('POST', '/api/v1/payments', r);
      expect(responses.map((r) => r.status)).to.deep.equal(Array(10).fill(201));
      expect(new Set(responses.map((r) => r.body.id)).size).to.equal(1);
      expect(responses.filter((r) => r.headers.get('idempotent-replayed') === 'true')).to.have.length(9);
      expect(await countPayments(`metadata->>'cart' = 'race-idem'`)).to.equal(1);
      expect(await gw.db('events').where({ payment_id: responses[0].body.id, type: 'payment.created' }).count('* as n').first()).to.deep.equal({ n: 1 });
    });

    it('works for admin POSTs too', async () => {
      const opts = { auth: gw.adminToken, body: { name: 'Idem Shop' }, headers: { 'idempotency-key': 'admin-1' } };
      const a = await api('POST', '/admin/v1/merchants', '/admin/v1/merchants', opts);
      const b = await api('POST', '/admin/v1/merchants', '/admin/v1/merchants', opts);
      expect(a.status).to.equal(201);
      expect(b.body).to.deep.equal(a.body);
      expect(b.headers.get('idempotent-replayed')).to.equal('true');
      expect(await gw.db('merchants').where({ name: 'Idem Shop' }).count('* as n').first()).to.deep.equal({ n: 1 });
      // The replayed body holds the new API key, which is never kept in clear: neither the key nor the
      // Idempotency-Key is readable in the table.
      const rows = await gw.db('idempotency_keys').where({ scope: 'admin' });
      expect(rows).to.have.length(1);
      expect(JSON.stringify(rows)).not.to.include(a.body.api_key);
      expect(JSON.stringify(rows)).not.to.include('Idem Shop');
      expect(rows[0].key).to.equal(stored('admin-1'));
    });

    it('keeps keys for the retention period and deletes them after it', async () => {
      // An old row (as if made 25 h ago) is no longer replayed: the key runs again as a new request.
      await gw.db('idempotency_keys').where({ scope: alice.id, key: stored('idem-fix') }).update({ created_at: gw.db.raw(`now() - interval '25 hours'`) });
      const res = await api('POST', '/api/v1/payments', '/api/v1/payments', { auth: alice.api_key, body: { amount: '2', currency: 'ETH' }, headers: { 'idempotency-key': 'idem-fix' } });
      expect(res.status).to.equal(201);
      expect(res.headers.get('idempotent-replayed')).to.equal(null);
      const { deleteExpiredIdempotencyKeys } = await import('../../api/middleware/idempotency.js');
      await gw.db('idempotency_keys').where({ scope: alice.id, key: stored('idem-1') }).update({ created_at: gw.db.raw(`now() - interval '23 hours'`) });
      await gw.db('idempotency_keys').where({ scope: alice.id, key: stored('race-1') }).update({ created_at: gw.db.raw(`now() - interval '25 hours'`) });
      expect(await deleteExpiredIdempotencyKeys(gw.db, 24)).to.equal(1);
      expect(await gw.db('idempotency_keys').where({ scope: alice.id, key: stored('idem-1') }).first()).to.be.an('object');
    });
  });

  describe('order_id', () => {
    it('is unique per merchant: a second payment answers 409 order_id_exists with the existing id', async () => {
      const first = await api('POST', '/api/v1/payments', '/api/v1/payments', { auth: alice.api_key, body: { amount: '1', currency: 'ETH', order_id: 'order-1' } });
      expect(first.status).to.equal(201);
      const second = await api('POST', '/api/v1/payments', '/api/v1/payments', { auth: alice.api_key, body: { amount: '2', currency: 'USDC', order_id: 'order-1' } });
      expect(second.status).to.equal(409);
      expect(second.body.error).to.include({ code: 'order_id_exists', param: 'order_id', payment_id: first.body.id });
      const bobs = await api('POST', '/api/v1/payments', '/api/v1/payments', { auth: bob.api_key, body: { amount: '1', currency: 'ETH', order_id: 'order-1' } });
      expect(bobs.status).to.equal(201);
    });

    it('holds under a race: N concurrent creates for one order make one payment', async () => {
      const responses = await Promise.all(
        Array.from({ length: 8 }, () => call(gw, 'POST', '/api/v1/payments', { auth: alice.api_key, body: { amount: '1', currency: 'ETH', order_id: 'order-race' } })),
      );
      for (const r of responses) expectMatchesSpec('POST', '/api/v1/payments', r);
      const created = responses.filter((r) => r.status === 201);
      expect(created).to.have.length(1);
      for (const r of responses.filter((x) => x.status !== 201)) {
        expect(r.status).to.equal(409);
        expect(r.body.error.payment_id).to.equal(created[0].body.id);
      }
      expect(await countPayments({ merchant_id: alice.id, order_id: 'order-race' })).to.equal(1);
    });
  });

  describe('cancel', () => {
    it('cancels a pending payment through the state machine and records payment.canceled once', async () => {
      const p = await api('POST', '/api/v1/payments', '/api/v1/payments', { auth: alice.api_key, body: { amount: '1', currency: 'ETH' } });
      expect((await api('POST', `/api/v1/payments/${p.body.id}/cancel`, '/api/v1/payments/{id}/cancel', { auth: bob.api_key })).status).to.equal(404);
      const canceled = await api('POST', `/api/v1/payments/${p.body.id}/cancel`, '/api/v1/payments/{id}/cancel', { auth: alice.api_key });
      expect(canceled.status).to.equal(200);
      expect(canceled.body.status).to.equal('canceled');
      expect((await gw.db('payments').where({ id: p.body.id }).first()).status).to.equal('canceled');
      const again = await api('POST', `/api/v1/payments/${p.body.id}/cancel`, '/api/v1/payments/{id}/cancel', { auth: alice.api_key });
      expect(again.status).to.equal(409);
      expect(again.body.error.code).to.equal('payment_not_cancelable');
      const events = await gw.db('events').where({ payment_id: p.body.id, type: 'payment.canceled' });
      expect(events).to.have.length(1);
      expect(events[0].data.status).to.equal('canceled');
    });

    it('answers 409 for a payment that is not pending, and changes nothing', async () => {
      for (const status of ['confirming', 'expired', 'confirmed']) {
        const p = await api('POST', '/api/v1/payments', '/api/v1/payments', { auth: alice.api_key, body: { amount: '1', currency: 'ETH' } });
        await gw.db('payments').where({ id: p.body.id }).update({ status });
        const res = await api('POST', `/api/v1/payments/${p.body.id}/cancel`, '/api/v1/payments/{id}/cancel', { auth: alice.api_key });
        expect(res.status, status).to.equal(409);
        expect((await gw.db('payments').where({ id: p.body.id }).first()).status).to.equal(status);
        expect(await gw.db('events').where({ payment_id: p.body.id, type: 'payment.canceled' }).count('* as n').first()).to.deep.equal({ n: 0 });
      }
    });

    it('concurrent cancels cancel once', async () => {
      const p = await api('POST', '/api/v1/payments', '/api/v1/payments', { auth: alice.api_key, body: { amount: '1', currency: 'ETH' } });
      const results = await Promise.all(Array.from({ length: 5 }, () => call(gw, 'POST', `/api/v1/payments/${p.body.id}/cancel`, { auth: alice.api_key })));
      expect(results.map((r) => r.status).sort()).to.deep.equal([200, 409, 409, 409, 409]);
      expect(await gw.db('events').where({ payment_id: p.body.id, type: 'payment.canceled' }).count('* as n').first()).to.deep.equal({ n: 1 });
    });
  });

  describe('events API', () => {
    let paymentId: string;
    before(async () => {
      const p = await call(gw, 'POST', '/api/v1/payments', { auth: bob.api_key, body: { amount: '3', currency: 'ETH' } });
      paymentId = p.body.id;
      await call(gw, 'POST', `/api/v1/payments/${paymentId}/cancel`, { auth: bob.api_key });
    });

    it('lists events newest first, filtered by type and by payment', async () => {
      const forPayment = await api('GET', `/api/v1/events?payment=${paymentId}`, '/api/v1/events', { auth: bob.api_key });
      expect(forPayment.status).to.equal(200);
      expect(forPayment.body.data.map((e: any) => e.type)).to.deep.equal(['payment.canceled', 'payment.created']);
      expect(forPayment.body.data[0]).to.include({ object: 'event', payment: paymentId });
      expect(forPayment.body.data[0].data.id).to.equal(paymentId);
      const canceled = await api('GET', '/api/v1/events?type=payment.canceled', '/api/v1/events', { auth: bob.api_key });
      expect(canceled.body.data.every((e: any) => e.type === 'payment.canceled')).to.equal(true);
      expect(canceled.body.data.map((e: any) => e.payment)).to.include(paymentId);
      const prefix = await api('GET', '/api/v1/events?type=payment.*&limit=100', '/api/v1/events', { auth: bob.api_key });
      expect(prefix.body.data.length).to.equal(Number((await gw.db('events').where({ merchant_id: bob.id }).count('* as n').first())!.n));
      const bad = await api('GET', '/api/v1/events?type=%27%20OR%201%3D1', '/api/v1/events', { auth: bob.api_key });
      expect(bad.status).to.equal(400);
    });

    it('retrieves one event; other merchants get 404', async () => {
      const list = await call(gw, 'GET', `/api/v1/events?payment=${paymentId}&limit=1`, { auth: bob.api_key });
      expect(list.body.has_more).to.equal(true);
      const id = list.body.data[0].id;
      const one = await api('GET', `/api/v1/events/${id}`, '/api/v1/events/{id}', { auth: bob.api_key });
      expect(one.body).to.deep.equal(list.body.data[0]);
      expect((await api('GET', `/api/v1/events/${id}`, '/api/v1/events/{id}', { auth: alice.api_key })).status).to.equal(404);
      expect((await api('GET', `/api/v1/events?payment=${paymentId}`, '/api/v1/events', { auth: alice.api_key })).body.data).to.deep.equal([]);
    });
  });

  describe('cursor pagination', () => {
    it('pages through every object exactly once while new ones are inserted concurrently', async () => {
      const m = await createTestMerchant(gw, 'Pager');
      const create = (tag: string) => call(gw, 'POST', '/api/v1/payments', { auth: m.api_key, body: { amount: '1', currency: 'ETH', metadata: { tag } } });
      for (let i = 0; i < 25; i++) await create('initial');
      const initial = (await gw.db('payments').where({ merchant_id: m.id }).select('id')).map((r) => r.id).sort();

      let inserting = true;
      const inserter = (async () => {
        let n = 0;
        while (inserting && n < 40) {
          await create('concurrent');
          n++;
        }
        return n;
      })();
      const seen: string[] = [];
      let cursor: string | undefined;
      for (;;) {
        const page = await api('GET', `/api/v1/payments?limit=4${cursor ? `&starting_after=${cursor}` : ''}`, '/api/v1/payments', { auth: m.api_key });
        expect(page.status).to.equal(200);
        seen.push(...page.body.data.map((p: any) => p.id));
        if (!page.body.has_more) break;
        cursor = page.body.data.at(-1).id;
        await new Promise((r) => setTimeout(r, 20)); // let the inserter interleave
      }
      inserting = false;
      const inserted = await inserter;
      expect(inserted).to.be.greaterThan(0);
      expect(new Set(seen).size, 'no object twice').to.equal(seen.length);
      // Everything that existed when paging started is seen; inserts during paging are newer than the first page
      // and may appear only there.
      for (const id of initial) expect(seen).to.include(id);

      // And backwards with ending_before from the oldest: the newest pages come back in order, nothing twice.
      const back: string[] = [];
      let before: string | undefined = seen.at(-1);
      for (;;) {
        const page = await api('GET', `/api/v1/payments?limit=7&ending_before=${before}`, '/api/v1/payments', { auth: m.api_key });
        back.unshift(...page.body.data.map((p: any) => p.id));
        if (!page.body.has_more) break;
        before = page.body.data[0].id;
      }
      const all = (await gw.db('payments').where({ merchant_id: m.id }).orderBy('seq', 'desc').select('id')).map((r) => r.id);
      expect([...back, seen.at(-1)]).to.deep.equal(all);
    });

    it('validates limit and cursors', async () => {
      for (const q of ['limit=0', 'limit=101', 'limit=abc', 'starting_after=pay_nope', 'starting_after=a&ending_before=b']) {
        const res = await api('GET', `/api/v1/payments?${q}`, '/api/v1/payments', { auth: alice.api_key });
        expect(res.status, q).to.equal(400);
      }
    });
  });

  describe('API keys', () => {
    it('admin creates keys with scopes; a read-only key reads and gets 403 on POST', async () => {
      const created = await api('POST', `/admin/v1/merchants/${alice.id}/keys`, '/admin/v1/merchants/{id}/keys', { auth: gw.adminToken, body: { scopes: ['read'] } });
      expect(created.status).to.equal(201);
      expect(created.body.key).to.match(/^sk_test_[A-Za-z0-9]{32}$/);
      expect(created.body.scopes).to.deep.equal(['read']);
      const readOnly = created.body.key;
      expect((await api('GET', '/api/v1/payments', '/api/v1/payments', { auth: readOnly })).status).to.equal(200);
      const denied = await api('POST', '/api/v1/payments', '/api/v1/payments', { auth: readOnly, body: { amount: '1', currency: 'ETH', metadata: { cart: 'ro' } } });
      expect(denied.status).to.equal(403);
      expect(denied.body.error.code).to.equal('insufficient_scope');
      expect(await countPayments(`metadata->>'cart' = 'ro'`)).to.equal(0);
      // A JWT from a read-only key is read-only too.
      const token = (await call(gw, 'POST', '/api/v1/auth/token', { body: { api_key: readOnly } })).body.token;
      expect((await api('POST', '/api/v1/webhook-endpoints', '/api/v1/webhook-endpoints', { auth: token, body: { url: 'http://127.0.0.1:9/h' } })).status).to.equal(403);

      const list = await api('GET', `/admin/v1/merchants/${alice.id}/keys`, '/admin/v1/merchants/{id}/keys', { auth: gw.adminToken });
      expect(list.body.data.map((k: any) => k.id)).to.include(created.body.id);
      expect(JSON.stringify(list.body)).not.to.include(readOnly);
      expect((await api('POST', '/admin/v1/merchants/mer_doesnotexist0000/keys', '/admin/v1/merchants/{id}/keys', { auth: gw.adminToken, body: {} })).status).to.equal(404);
      expect((await api('POST', `/admin/v1/merchants/${alice.id}/keys`, '/admin/v1/merchants/{id}/keys', { auth: gw.adminToken, body: { scopes: ['admin'] } })).status).to.equal(400);
      expect((await api('GET', `/admin/v1/merchants/${alice.id}/keys`, '/admin/v1/merchants/{id}/keys', { auth: alice.api_key })).status).to.equal(401);
    });

    it('rotates a key: the new one works at once, the old one and its JWTs are refused', async () => {
      const created = await call(gw, 'POST', `/admin/v1/merchants/${bob.id}/keys`, { auth: gw.adminToken, body: {} });
      const oldKey = created.body.key;
      const jwt = (await call(gw, 'POST', '/api/v1/auth/token', { body: { api_key: oldKey } })).body.token;
      expect((await call(gw, 'GET', '/api/v1/chains', { auth: jwt })).status).to.equal(200);
      const rotated = await api('POST', `/admin/v1/merchants/${bob.id}/keys/${created.body.id}/rotate`, '/admin/v1/merchants/{id}/keys/{keyId}/rotate', { auth: gw.adminToken });
      expect(rotated.status).to.equal(201);
      expect(rotated.body).to.include({ replaces: created.body.id, merchant_id: bob.id });
      expect(rotated.body.scopes).to.deep.equal(['read', 'write']);
      expect((await api('GET', '/api/v1/chains', '/api/v1/chains', { auth: rotated.body.key })).status).to.equal(200);
      // Revoked by this very process, so no cache delay.
      expect((await api('GET', '/api/v1/chains', '/api/v1/chains', { auth: oldKey })).status).to.equal(401);
      expect((await api('GET', '/api/v1/chains', '/api/v1/chains', { auth: jwt })).status).to.equal(401);
      const twice = await api('POST', `/admin/v1/merchants/${bob.id}/keys/${created.body.id}/rotate`, '/admin/v1/merchants/{id}/keys/{keyId}/rotate', { auth: gw.adminToken });
      expect(twice.status).to.equal(409);
    });

    it('revokes a key', async () => {
      const created = await call(gw, 'POST', `/admin/v1/merchants/${bob.id}/keys`, { auth: gw.adminToken, body: { scopes: ['read'] } });
      expect((await call(gw, 'GET', '/api/v1/chains', { auth: created.body.key })).status).to.equal(200);
      const revoked = await api('DELETE', `/admin/v1/merchants/${bob.id}/keys/${created.body.id}`, '/admin/v1/merchants/{id}/keys/{keyId}', { auth: gw.adminToken });
      expect(revoked.status).to.equal(200);
      expect(revoked.body.revoked_at).to.be.a('string');
      expect((await api('GET', '/api/v1/chains', '/api/v1/chains', { auth: created.body.key })).status).to.equal(401);
      expect((await api('DELETE', `/admin/v1/merchants/${alice.id}/keys/${created.body.id}`, '/admin/v1/merchants/{id}/keys/{keyId}', { auth: gw.adminToken })).status).to.equal(404);
    });

    it('caches key lookups briefly: a key revoked elsewhere keeps working for at most the TTL (2 s here), then is refused', async () => {
      const created = await call(gw, 'POST', `/admin/v1/merchants/${bob.id}/keys`, { auth: gw.adminToken, body: {} });
      const key = created.body.key;
      expect((await call(gw, 'GET', '/api/v1/chains', { auth: key })).status).to.equal(200); // now cached
      // Revoked behind this process's back, as another API process (or an operator in SQL) would.
      await gw.db('api_keys').where({ id: created.body.id }).update({ revoked_at: gw.db.fn.now() });
      const revokedAt = Date.now();
      const stillCached = await call(gw, 'GET', '/api/v1/chains', { auth: key });
      // The cache is what answers here; if this request took longer than the TTL the check below still holds.
      if (Date.now() - revokedAt < 1500) expect(stillCached.status, 'served from the cache').to.equal(200);
      await waitFor(async () => (await call(gw, 'GET', '/api/v1/chains', { auth: key })).status === 401, 10_000, () => 'revoked key still accepted');
    });
  });

  describe('JWTs', () => {
    it('refuses tokens with another algorithm, without a key id, or from an unknown key', async () => {
      const key = (await call(gw, 'POST', '/api/v1/auth/token', { body: { api_key: alice.api_key } })).body.token;
      const { kid } = jsonwebtoken.decode(key) as { kid: string };
      const secret = gw.env.JWT_SECRET;
      const hs512 = jsonwebtoken.sign({ scopes: ['read', 'write'], kid }, secret, { subject: alice.id, algorithm: 'HS512' });
      const noKid = jsonwebtoken.sign({ scopes: ['read', 'write'] }, secret, { subject: alice.id, algorithm: 'HS256' });
      const unknownKid = jsonwebtoken.sign({ scopes: ['read', 'write'], kid: 'key_unknown000000000000' }, secret, { subject: alice.id, algorithm: 'HS256' });
      const none = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from(JSON.stringify({ sub: alice.id, kid, scopes: ['write'] })).toString('base64url')}.`;
      const expired = jsonwebtoken.sign({ scopes: ['read'], kid }, secret, { subject: alice.id, expiresIn: -5 });
      for (const [name, token] of Object.entries({ hs512, noKid, unknownKid, none, expired })) {
        const res = await api('GET', '/api/v1/payments', '/api/v1/payments', { auth: token });
        expect(res.status, name).to.equal(401);
      }
      expect((await api('GET', '/api/v1/payments', '/api/v1/payments', { auth: key })).status).to.equal(200);
    });
  });

  describe('HTTP', () => {
    it('GETs carry an ETag and answer 304 to If-None-Match', async () => {
      const p = await call(gw, 'POST', '/api/v1/payments', { auth: alice.api_key, body: { amount: '1', currency: 'ETH' } });
      const first = await api('GET', `/api/v1/payments/${p.body.id}`, '/api/v1/payments/{id}', { auth: alice.api_key });
      const etag = first.headers.get('etag');
      expect(etag).to.be.a('string');
      // node:http, not fetch: fetch adds Cache-Control: no-cache to conditional requests, which (rightly) disables 304.
      const cached = await rawGet(`/api/v1/payments/${p.body.id}`, { authorization: `Bearer ${alice.api_key}`, 'if-none-match': etag! });
      expect(cached.status).to.equal(304);
      expect(cached.body).to.equal('');
      await call(gw, 'POST', `/api/v1/payments/${p.body.id}/cancel`, { auth: alice.api_key });
      const changed = await rawGet(`/api/v1/payments/${p.body.id}`, { authorization: `Bearer ${alice.api_key}`, 'if-none-match': etag! });
      expect(changed.status).to.equal(200);
      expect(changed.headers.etag).not.to.equal(etag);
    });

    it('answers JSON, success or error, as application/json with a Content-Length of exactly its bytes', async () => {
      const p = await call(gw, 'POST', '/api/v1/payments', { auth: alice.api_key, body: { amount: '1', currency: 'ETH', metadata: { note: 'café ☕' } } });
      const answers = [
        await rawGet(`/api/v1/payments/${p.body.id}`, { authorization: `Bearer ${alice.api_key}` }), // an object
        await rawGet('/api/v1/payments?limit=2', { authorization: `Bearer ${alice.api_key}` }), // a list
        await rawGet('/api/v1/payments/pay_missing', { authorization: `Bearer ${alice.api_key}` }), // an error
      ];
      expect(answers.map((a) => a.status)).to.deep.equal([200, 200, 404]);
      for (const a of answers) {
        expect(a.headers['content-type']).to.equal('application/json; charset=utf-8');
        expect(Number(a.headers['content-length'])).to.equal(Buffer.byteLength(a.body));
        expect(() => JSON.parse(a.body)).not.to.throw();
      }
      expect(JSON.parse(answers[0].body).metadata).to.deep.equal({ note: 'café ☕' });
    });

    it('compresses JSON over 1 kB with br or gzip, and leaves small bodies alone', async () => {
      const big = await fetch(`${gw.apiUrl}/api/v1/payments?limit=20`, { headers: { authorization: `Bearer ${alice.api_key}`, 'accept-encoding': 'br' } });
      expect(big.headers.get('content-encoding')).to.equal('br');
      expect((await big.json()).data.length).to.be.greaterThan(3);
      const gz = await fetch(`${gw.apiUrl}/api/v1/payments?limit=20`, { headers: { authorization: `Bearer ${alice.api_key}`, 'accept-encoding': 'gzip' } });
      expect(gz.headers.get('content-encoding')).to.equal('gzip');
      const small = await fetch(`${gw.apiUrl}/health`, { headers: { 'accept-encoding': 'gzip, br' } });
      expect(small.headers.get('content-encoding')).to.equal(null);
    });

    it('sends security headers, and CORS headers only to configured origins', async () => {
      const res = await call(gw, 'GET', '/api/v1/chains', { auth: alice.api_key, headers: { origin: 'https://shop.example' } });
      // JSON answers, successes and errors alike, carry the JSON set; HTML pages get helmet's full set.
      const unauthenticated = await call(gw, 'GET', '/api/v1/chains');
      expect(unauthenticated.status).to.equal(401);
      for (const answer of [res, unauthenticated]) {
        expect(answer.headers.get('x-content-type-options')).to.equal('nosniff');
        expect(answer.headers.get('strict-transport-security')).to.equal('max-age=31536000; includeSubDomains');
        expect(answer.headers.get('content-security-policy')).to.equal("default-src 'none'; frame-ancestors 'none'");
        expect(answer.headers.get('x-frame-options')).to.equal('DENY');
        expect(answer.headers.get('referrer-policy')).to.equal('no-referrer');
        expect(answer.headers.get('cross-origin-resource-policy')).to.equal('cross-origin');
        expect(answer.headers.get('x-dns-prefetch-control')).to.equal(null);
      }
      const docsPage = await fetch(`${gw.apiUrl}/docs`);
      expect(docsPage.headers.get('content-security-policy')).to.include("style-src 'unsafe-inline'");
      expect(docsPage.headers.get('x-dns-prefetch-control')).to.equal('off');
      expect(docsPage.headers.get('x-frame-options')).to.equal('SAMEORIGIN');
      expect(res.headers.get('access-control-allow-origin')).to.equal('https://shop.example');
      const other = await call(gw, 'GET', '/api/v1/chains', { auth: alice.api_key, headers: { origin: 'https://evil.example' } });
      expect(other.headers.get('access-control-allow-origin')).to.equal(null);
      const preflight = await fetch(`${gw.apiUrl}/api/v1/payments`, {
        method: 'OPTIONS',
        headers: { origin: 'https://shop.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type,idempotency-key' },
      });
      expect(preflight.status).to.equal(204);
      expect(preflight.headers.get('access-control-allow-headers')).to.match(/Idempotency-Key/i);
    });

    it('bounds strings and metadata', async () => {
      const cases = [
        { amount: '1', currency: 'ETH', order_id: 'x'.repeat(201) },
        { amount: '1', currency: 'ETH', metadata: Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`k${i}`, 'v'])) },
        { amount: '1', currency: 'ETH', metadata: { ['k'.repeat(41)]: 'v' } },
        { amount: '1', currency: 'ETH', metadata: { k: 'v'.repeat(501) } },
        { amount: '1', currency: 'ETH', metadata: JSON.parse('{"__proto__": "x"}') },
        { amount: '1'.repeat(101), currency: 'ETH' },
      ];
      for (const body of cases) {
        const res = await api('POST', '/api/v1/payments', '/api/v1/payments', { auth: alice.api_key, body });
        expect(res.status, JSON.stringify(body).slice(0, 80)).to.equal(400);
      }
    });
  });

  after(() => {
    // A guard against a helper that silently stopped checking.
    expect(schemaChecks).to.be.greaterThan(50);
  });
});
