import { expect } from 'chai';
import fc from 'fast-check';
import { createTestMerchant, startGateway, type Gateway } from '../support/gateway.js';
import { openapi } from '../support/apiSchema.js';

/**
 * Property-based fuzzing of every documented route on a real API process: malformed, oversized, wrongly typed and
 * hostile requests (SQL, JSON, unicode, prototype pollution). Properties: no response is a 5xx, JSON routes answer
 * errors in the documented shape, the process keeps running, and a rejected write leaves every table as it was.
 */
const RUNS = Number(process.env.FUZZ_RUNS ?? 2000);

const HOSTILE = [
  "' OR '1'='1", "'; DROP TABLE payments; --", '" OR ""="', '1; SELECT pg_sleep(5)', '$1', '\\', '%', '_', '%00', '\u0000', '\uD800', '\uFFFF',
  '\u202Eevil', '🦄'.repeat(50), 'ﷺ', 'İ', '../../etc/passwd', '${jndi:ldap://x}', '<script>alert(1)</script>', '{{7*7}}', 'NaN', 'Infinity', '-0', '1e309',
  '0x10', '١٢٣', '  1 ', '1.', '.5', '00.1', '1e-7', '9'.repeat(80), 'x'.repeat(5000), '__proto__', 'constructor', 'prototype', 'null', 'undefined', '[]', '{}',
  'pay_', 'pay_' + 'A'.repeat(22), 'evt_../..', 'sk_test_' + 'a'.repeat(32), 'Bearer', '', ' ',
];
const RAW_BODIES = [
  '{"__proto__":{"polluted":true},"amount":"1","currency":"ETH"}',
  '{"constructor":{"prototype":{"polluted":true}},"amount":"1","currency":"ETH"}',
  '{"amount":"1","currency":"ETH","metadata":{"__proto__":{"polluted":true}}}',
  '{"amount":"1","currency":"ETH","metadata":{"constructor":"x"}}',
  '{"amount":"1","amount":"2","currency":"ETH"}',
  '{"amount":', '{', '[', 'null', 'true', '1', '"str"', '[]', '{}', '\uFEFF{}', '{"a":1}garbage', '{"a":"\\ud800"}', "{'a':1}", 'NaN',
  '['.repeat(20_000) + ']'.repeat(20_000),
  '{"a":'.repeat(6000) + '1' + '}'.repeat(6000),
  JSON.stringify({ amount: '1', currency: 'ETH', metadata: { k: 'v'.repeat(70_000) } }),
  JSON.stringify(Array.from({ length: 5000 }, (_, i) => ({ i }))),
];

const hostileString = fc.oneof(fc.constantFrom(...HOSTILE), fc.string({ maxLength: 80 }), fc.string({ unit: 'grapheme', maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 40 }));
const jsonValue = fc.oneof(
  { depthSize: 'small' },
  hostileString,
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(hostileString, { maxLength: 5 }),
  fc.dictionary(hostileString, hostileString, { maxKeys: 5 }),
);
const decimal = fc.oneof(fc.constantFrom('1', '0.05', '0', '-1', '1.1234567', '0.0000000000000000001', '1e3'), hostileString, fc.integer(), fc.double());
const paymentBody = fc.record(
  {
    amount: decimal,
    currency: fc.oneof(fc.constantFrom('ETH', 'USDC', 'DOGE', 'eth'), hostileString, fc.integer()),
    chain_id: fc.oneof(fc.integer(), hostileString, fc.double()),
    order_id: fc.oneof(hostileString, fc.integer()),
    metadata: fc.oneof(fc.dictionary(hostileString, jsonValue, { maxKeys: 25 }), jsonValue),
    expires_in: fc.oneof(fc.integer(), fc.double(), hostileString),
    confirmations: fc.oneof(fc.integer(), hostileString),
    url: fc.oneof(hostileString, fc.webUrl(), fc.constantFrom('http://169.254.169.254/latest', 'file:///etc/passwd', 'javascript:alert(1)', 'http://[::1]/')),
    events: fc.oneof(fc.array(hostileString, { maxLength: 60 }), hostileString),
    scopes: fc.oneof(fc.array(fc.oneof(fc.constantFrom('read', 'write', 'admin'), hostileString), { maxLength: 4 }), hostileString),
    name: fc.oneof(hostileString, fc.integer()),
    api_key: fc.oneof(hostileString, fc.integer()),
    action: fc.oneof(fc.constantFrom('accept', 'refund'), hostileString),
    [hostileString.toString()]: jsonValue,
  },
  { requiredKeys: [] },
);
const body = fc.oneof(
  { weight: 4, arbitrary: paymentBody.map((b) => ({ kind: 'json' as const, value: b as unknown })) },
  { weight: 2, arbitrary: jsonValue.map((v) => ({ kind: 'json' as const, value: v as unknown })) },
  { weight: 2, arbitrary: fc.constantFrom(...RAW_BODIES).map((raw) => ({ kind: 'raw' as const, raw, type: 'application/json' })) },
  { weight: 1, arbitrary: fc.tuple(hostileString, fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'application/xml', 'multipart/form-data; boundary=x', 'application/json; charset=utf-16', 'application/jsonx')).map(([raw, type]) => ({ kind: 'raw' as const, raw: raw || 'x', type })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'none' as const }) },
);
const headerSafe = (s: string) => s.replace(/[^\x20-\x7e]/g, '').slice(0, 300);

describe('fuzz: hostile requests to every route', function () {
  this.timeout(180_000);
  let gw: Gateway;
  let credentials: string[];
  let ids: string[];

  before(async () => {
    gw = await startGateway({ env: { RATE_LIMIT_READ: '1000000', RATE_LIMIT_WRITE: '1000000', RATE_LIMIT_PER_IP: '1000000', CHECKOUT_RATE_LIMIT: '1000000' } });
    const m = await createTestMerchant(gw, 'Fuzzed Shop');
    const readOnly = (await fetch(`${gw.apiUrl}/admin/v1/merchants/${m.id}/keys`, {
      method: 'POST', headers: { authorization: `Bearer ${gw.adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ scopes: ['read'] }),
    }).then((r) => r.json())) as { key: string; id: string };
    const payment = (await fetch(`${gw.apiUrl}/api/v1/payments`, {
      method: 'POST', headers: { authorization: `Bearer ${m.api_key}`, 'content-type': 'application/json' }, body: JSON.stringify({ amount: '1', currency: 'ETH' }),
    }).then((r) => r.json())) as { id: string };
    expect(payment.id).to.match(/^pay_/);
    const event = (await gw.db('events').where({ payment_id: payment.id }).first()).id;
    credentials = [m.api_key, m.api_key, readOnly.key, gw.adminToken, gw.adminToken, 'sk_test_' + 'x'.repeat(32), 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.'];
    ids = [payment.id, event, m.id, readOnly.id, 'pay_doesnotexist0000000000'];
  });
  after(async () => gw?.stop());

  const tables = ['merchants', 'api_keys', 'payments', 'webhook_endpoints', 'idempotency_keys'];
  async function rowCounts(): Promise<Record<string, number>> {
    const { rows } = await gw.db.raw(
      `SELECT ${tables.map((t) => `(SELECT count(*) FROM ${t})::int AS ${t}`).join(', ')},
              (SELECT count(*) FROM events WHERE type <> 'payment.expired')::int AS events`,
    );
    return rows[0];
  }

  it(`answers ${RUNS} hostile requests without a 5xx, a crash or a write`, async () => {
    const operations: { method: string; path: string }[] = [];
    for (const [path, item] of Object.entries<Record<string, unknown>>(openapi.paths)) {
      for (const method of ['get', 'post', 'put', 'patch', 'delete']) if (item[method]) operations.push({ method: method.toUpperCase(), path });
    }
    operations.push({ method: 'GET', path: '/api/v1/{x}' }, { method: 'PUT', path: '/api/v1/payments/{id}' }, { method: 'POST', path: '/admin/v1/{x}' });

    const request = fc.record({
      operation: fc.constantFrom(...operations),
      pathParam: fc.oneof(fc.constantFrom(...ids), hostileString),
      query: fc.dictionary(fc.oneof(fc.constantFrom('limit', 'starting_after', 'ending_before', 'status', 'type', 'payment'), hostileString), fc.oneof(hostileString, fc.integer().map(String)), { maxKeys: 4 }),
      auth: fc.oneof(fc.constantFrom(...[0, 1, 2, 3, 4, 5, 6]).map((i) => `Bearer ${credentials[i]}`), hostileString.map((s) => `Bearer ${s}`), hostileString, fc.constant('')),
      idempotencyKey: fc.option(hostileString, { nil: undefined }),
      body,
    });

    let requests = 0;
    const problems: string[] = [];
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        // Lone surrogates cannot be percent-encoded; a client would send U+FFFD for them, so do the same.
        const wellFormed = (s: string) => Buffer.from(s, 'utf8').toString('utf8');
        const path = r.operation.path.replace(/\{[^}]+\}/g, () => encodeURIComponent(wellFormed(r.pathParam)) || 'x');
        const query = new URLSearchParams(Object.entries(r.query).map(([k, v]) => [wellFormed(k), wellFormed(v)])).toString();
        const headers: Record<string, string> = {};
        if (r.auth) headers.authorization = headerSafe(r.auth);
        if (r.idempotencyKey !== undefined) headers['idempotency-key'] = headerSafe(r.idempotencyKey);
        let payload: string | undefined;
        if (r.operation.method !== 'GET' && r.body.kind !== 'none') {
          payload = r.body.kind === 'json' ? JSON.stringify(r.body.value) ?? 'null' : r.body.raw;
          headers['content-type'] = r.body.kind === 'json' ? 'application/json' : r.body.type;
        }
        const isWrite = r.operation.method !== 'GET';
        const before = isWrite ? await rowCounts() : undefined;
        const res = await fetch(`${gw.apiUrl}${path}${query ? `?${query}` : ''}`, { method: r.operation.method, headers, body: payload });
        const text = await res.text();
        requests++;
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        const where = `${r.operation.method} ${path.slice(0, 120)} → ${res.status}`;
        if (res.status >= 500) problems.push(`${where}: ${text.slice(0, 300)}`);
        const json = res.headers.get('content-type')?.startsWith('application/json');
        if (res.status >= 400 && (path.startsWith('/api/') || path.startsWith('/admin/v1'))) {
          const parsed = json ? JSON.parse(text) : undefined;
          if (!parsed?.error?.type || !parsed.error.code || typeof parsed.error.message !== 'string') problems.push(`${where}: not a JSON error: ${text.slice(0, 200)}`);
        }
        if (isWrite && res.status >= 400) {
          const after = await rowCounts();
          // A stored 409 (e.g. payment_not_cancelable) is an idempotency record of that answer, not a write.
          if (res.status === 409 && headers['idempotency-key']) after.idempotency_keys = before!.idempotency_keys;
          if (JSON.stringify(after) !== JSON.stringify(before)) problems.push(`${where}: rejected, yet rows changed ${JSON.stringify(before)} → ${JSON.stringify(after)}`);
        }
        return problems.length === 0;
      }),
      { numRuns: RUNS, endOnFailure: true },
    ).catch((err) => {
      throw new Error(`${(err as Error).message.slice(0, 3000)}\nproblems:\n${problems.slice(0, 10).join('\n')}`);
    });

    expect(problems).to.deep.equal([]);
    expect(requests).to.equal(RUNS);
    expect(gw.api.exitCode, 'API process still running').to.equal(null);
    expect((await fetch(`${gw.apiUrl}/health`)).status).to.equal(200);
    // Enough requests got past validation to exercise the handlers, not just the parsers.
    const rejectedByHandlers = [...statuses].filter(([s]) => s === 404 || s === 409 || s === 422).reduce((n, [, c]) => n + c, 0);
    expect(rejectedByHandlers, JSON.stringify([...statuses])).to.be.greaterThan(RUNS / 20);
    expect(statuses.get(200) ?? 0, JSON.stringify([...statuses])).to.be.greaterThan(0);
  });
});
