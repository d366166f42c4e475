import { expect } from 'chai';
import jsonwebtoken from 'jsonwebtoken';
import { call, createTestMerchant, startGateway, type Gateway } from '../support/gateway.js';

/** Who may do what, and how bad input is answered: always a 4xx JSON error, never a 500 or a partial write. */
describe('API access and validation', function () {
  this.timeout(60_000);
  let gw: Gateway;
  let alice: { id: string; api_key: string };
  let bob: { id: string; api_key: string };

  before(async () => {
    gw = await startGateway();
    alice = await createTestMerchant(gw, 'Alice');
    bob = await createTestMerchant(gw, 'Bob');
  });
  after(async () => gw?.stop());

  const expectError = (res: { status: number; body: any }, status: number, code?: string, param?: string) => {
    expect(res.status, JSON.stringify(res.body)).to.equal(status);
    expect(res.body.error).to.be.an('object');
    expect(res.body.error.type).to.be.a('string');
    expect(res.body.error.message).to.be.a('string');
    if (code) expect(res.body.error.code).to.equal(code);
    if (param) expect(res.body.error.param).to.equal(param);
  };

  it('GET /health is public', async () => {
    const res = await call(gw, 'GET', '/health');
    expect(res.status).to.equal(200);
    expect(res.body).to.deep.equal({ status: 'ok' });
  });

  it('unknown routes answer a 404 JSON error', async () => {
    expectError(await call(gw, 'GET', '/nope'), 404, 'route_not_found');
    expectError(await call(gw, 'GET', '/api/v1/nope', { auth: alice.api_key }), 404);
  });

  it('admin routes need the admin token', async () => {
    expectError(await call(gw, 'POST', '/admin/v1/merchants', { body: { name: 'x' } }), 401);
    expectError(await call(gw, 'POST', '/admin/v1/merchants', { auth: 'wrong-token-wrong-token', body: { name: 'x' } }), 401);
    expectError(await call(gw, 'POST', '/admin/v1/merchants', { auth: alice.api_key, body: { name: 'x' } }), 401);
  });

  it('stores API keys only as hashes', async () => {
    expect(alice.api_key).to.match(/^sk_test_[A-Za-z0-9]{32}$/);
    const rows = await gw.db('api_keys').select('*');
    for (const row of rows) expect(JSON.stringify(row)).not.to.include(alice.api_key);
    expect(rows.find((r) => r.merchant_id === alice.id).key_hash).to.match(/^[0-9a-f]{64}$/);
  });

  it('every /api/v1 route needs a valid key or token', async () => {
    expectError(await call(gw, 'GET', '/api/v1/payments'), 401);
    expectError(await call(gw, 'GET', '/api/v1/payments', { auth: 'sk_test_notarealkeynotarealkeynotareal' }), 401);
    expectError(await call(gw, 'POST', '/api/v1/payments', { body: { amount: '1', currency: 'ETH' } }), 401);
    expectError(await call(gw, 'GET', '/api/v1/chains', { headers: { authorization: 'Basic abc' } }), 401);
    expect(await gw.db('payments').count('* as n').first()).to.deep.equal({ n: 0 });
  });

  it('exchanges an API key for a JWT that authenticates; forged, expired and alg:none tokens are refused', async () => {
    const issued = await call(gw, 'POST', '/api/v1/auth/token', { body: { api_key: alice.api_key } });
    expect(issued.status).to.equal(201);
    expect(issued.body.token_type).to.equal('Bearer');
    const ok = await call(gw, 'GET', '/api/v1/payments', { auth: issued.body.token });
    expect(ok.status).to.equal(200);
    expectError(await call(gw, 'POST', '/api/v1/auth/token', { body: { api_key: 'sk_test_bad' } }), 401);

    const forged = jsonwebtoken.sign({ scopes: ['read', 'write'] }, 'not-the-secret-not-the-secret-!!', { subject: alice.id });
    expectError(await call(gw, 'GET', '/api/v1/payments', { auth: forged }), 401);
    const expired = jsonwebtoken.sign({ scopes: ['read'] }, gw.env.JWT_SECRET, { subject: alice.id, expiresIn: -10 });
    expectError(await call(gw, 'GET', '/api/v1/payments', { auth: expired }), 401);
    const none = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from(JSON.stringify({ sub: alice.id, scopes: ['read'] })).toString('base64url')}.`;
    expectError(await call(gw, 'GET', '/api/v1/payments', { auth: none }), 401);
  });

  it("a merchant never sees another merchant's objects", async () => {
    const p = await call(gw, 'POST', '/api/v1/payments', { auth: alice.api_key, body: { amount: '0.1', currency: 'ETH' } });
    expect(p.status).to.equal(201);
    expectError(await call(gw, 'GET', `/api/v1/payments/${p.body.id}`, { auth: bob.api_key }), 404, 'resource_missing');
    const list = await call(gw, 'GET', '/api/v1/payments', { auth: bob.api_key });
    expect(list.body.data).to.deep.equal([]);
    const ep = await call(gw, 'POST', '/api/v1/webhook-endpoints', { auth: alice.api_key, body: { url: 'http://127.0.0.1:9/x' } });
    expectError(await call(gw, 'DELETE', `/api/v1/webhook-endpoints/${ep.body.id}`, { auth: bob.api_key }), 404);
    const del = await call(gw, 'DELETE', `/api/v1/webhook-endpoints/${ep.body.id}`, { auth: alice.api_key });
    expect(del.status).to.equal(200);
    expectError(await call(gw, 'GET', `/api/v1/webhook-endpoints/${ep.body.id}`, { auth: alice.api_key }), 404);
  });

  it('ids holding bytes Postgres cannot compare (NUL) answer 4xx, never 500', async () => {
    for (const [method, route] of [
      ['GET', '/api/v1/payments/%00'],
      ['POST', '/api/v1/webhook-endpoints/%00/test'],
      ['GET', '/api/v1/events/pay_%00'],
      ['POST', '/api/v1/payments/%00/resolve'],
    ] as const) {
      const res = await call(gw, method, route, { auth: alice.api_key, ...(method === 'POST' ? { body: { action: 'accept' } } : {}) });
      expect(res.status, `${method} ${route}: ${JSON.stringify(res.body)}`).to.be.within(400, 499);
      expect(res.body.error.type).to.be.a('string');
    }
  });

  it('rejects bad payment input with 400 naming the parameter, and writes nothing', async () => {
    const before = Number((await gw.db('payments').count('* as n').first())!.n);
    const cases: [unknown, string, string][] = [
      [{ amount: '0', currency: 'ETH' }, 'amount_not_positive', 'amount'],
      [{ amount: '-1', currency: 'ETH' }, 'amount_invalid', 'amount'],
      [{ amount: 'ten', currency: 'ETH' }, 'amount_invalid', 'amount'],
      [{ amount: 0.05, currency: 'ETH' }, 'parameter_invalid', 'amount'],
      [{ amount: '1.1234567', currency: 'USDC' }, 'amount_too_precise', 'amount'],
      [{ amount: '0.0000000000000000001', currency: 'ETH' }, 'amount_too_precise', 'amount'],
      [{ amount: '1', currency: 'DOGE' }, 'currency_unsupported', 'currency'],
      [{ amount: '1', currency: 'ETH', chain_id: 1 }, 'chain_unsupported', 'chain_id'],
      [{ currency: 'ETH' }, 'parameter_missing', 'amount'],
      [{ amount: '1', currency: 'ETH', surprise: true }, 'parameter_unknown', 'surprise'],
      [{ amount: '1', currency: 'ETH', expires_in: 5 }, 'parameter_invalid', 'expires_in'],
    ];
    for (const [body, code, param] of cases) {
      expectError(await call(gw, 'POST', '/api/v1/payments', { auth: alice.api_key, body }), 400, code, param);
    }
    expectError(await call(gw, 'POST', '/api/v1/payments', { auth: alice.api_key, rawBody: '{"amount":', headers: { 'content-type': 'application/json' } }), 400, 'invalid_json');
    expectError(await call(gw, 'POST', '/api/v1/payments', { auth: alice.api_key, rawBody: 'amount=1', headers: { 'content-type': 'text/plain' } }), 415);
    expectError(await call(gw, 'POST', '/api/v1/payments', { auth: alice.api_key, rawBody: JSON.stringify({ amount: '1', currency: 'ETH', metadata: { big: 'x'.repeat(70_000) } }), headers: { 'content-type': 'application/json' } }), 413);
    expect(Number((await gw.db('payments').count('* as n').first())!.n)).to.equal(before);
  });
});
