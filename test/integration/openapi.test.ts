import { Validator } from '@seriousme/openapi-schema-validator';
import { expect } from 'chai';
import { createApp } from '../../api/app.js';
import { jwtKey } from '../../api/auth/merchantAuth.js';
import { loadConfig } from '../../shared/config.js';
import { createLogger } from '../../shared/logger.js';
import { createQueues, createRedis, closeQueues } from '../../shared/queues/redis.js';
import { createDepositWallet } from '../../shared/wallet/hdWallet.js';
import { call, createTestMerchant, startGateway, type Gateway } from '../support/gateway.js';
import { expectMatchesSpec, openapi } from '../support/apiSchema.js';

/** Routes that are not part of the API document: Bull Board's UI and its own JSON API. */
const UNDOCUMENTED_PREFIXES = ['/admin/queues'];

/**
 * Every route the Koa app registers, as `METHOD /path/{param}`, found by walking the @koa/router layers mounted on
 * the app or inside a group of middleware (nested routers are flattened into their parent's stack with the prefix applied).
 */
type Mounted = { router?: { stack: { path: string; methods: string[] }[] }; mounted?: Mounted[] };
function registeredRoutes(app: { middleware: unknown[] }): string[] {
  const routes = new Set<string>();
  // Routers mounted straight on the app, or inside a group of middleware (app.ts: outsideApi).
  const flatten = (list: Mounted[]): Mounted[] => list.flatMap((fn) => [fn, ...flatten(fn.mounted ?? [])]);
  for (const fn of flatten(app.middleware as Mounted[])) {
    for (const layer of fn.router?.stack ?? []) {
      if (layer.methods.length === 0) continue; // router.use() middleware, not a route
      if (UNDOCUMENTED_PREFIXES.some((p) => layer.path.startsWith(p))) continue;
      const documented = layer.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
      for (const method of layer.methods) if (method !== 'HEAD' && method !== 'OPTIONS') routes.add(`${method} ${documented}`);
    }
  }
  return [...routes].sort();
}

const normalise = (route: string) => route.replace(/\{[^}]+\}/g, '{}');

describe('OpenAPI document (docs/openapi.json)', function () {
  this.timeout(60_000);
  let gw: Gateway;

  before(async () => {
    gw = await startGateway({ workers: 0 });
  });
  after(async () => gw?.stop());

  it('is a valid OpenAPI 3.1 document (checked by @seriousme/openapi-schema-validator)', async () => {
    const result = await new Validator().validate(structuredClone(openapi));
    expect(result.errors ?? [], JSON.stringify(result.errors, null, 2)?.slice(0, 3000)).to.deep.equal([]);
    expect(result.valid).to.equal(true);
    expect(openapi.openapi).to.match(/^3\.1\./);
  });

  it('documents every route the app registers (add new routes to docs/openapi.json)', async () => {
    const redis = createRedis(gw.env.REDIS_URL, 'producer');
    const queues = createQueues(redis, gw.env.QUEUE_PREFIX);
    try {
      const config = loadConfig(gw.env);
      const app = createApp({
        config,
        db: gw.db,
        log: createLogger({ level: 'silent', pretty: false, name: 'openapi-test' }),
        wallet: createDepositWallet(config.hdMnemonic),
        jwtKey: jwtKey(config.jwtSecret),
        redis,
        queues,
      });
      const registered = registeredRoutes(app);
      expect(registered.length, 'the walk found the routes').to.be.greaterThan(15);
      expect(registered).to.include.members(['POST /api/v1/payments', 'GET /api/v1/events/{id}', 'DELETE /admin/v1/merchants/{id}/keys/{keyId}']);
      const documented = new Set<string>();
      for (const [path, item] of Object.entries<Record<string, unknown>>(openapi.paths)) {
        for (const method of ['get', 'post', 'put', 'patch', 'delete']) if (item[method]) documented.add(normalise(`${method.toUpperCase()} ${path}`));
      }
      const missing = registered.filter((r) => !documented.has(normalise(r)));
      expect(missing, `routes missing from docs/openapi.json (document them there):\n  ${missing.join('\n  ')}`).to.deep.equal([]);
    } finally {
      await closeQueues(queues).catch(() => {});
      redis.disconnect();
    }
  });

  it('documents path parameters with the names the routes use, and every operation has responses', () => {
    for (const [path, item] of Object.entries<Record<string, any>>(openapi.paths)) {
      const names = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]).sort();
      for (const [method, op] of Object.entries<any>(item)) {
        if (!['get', 'post', 'put', 'patch', 'delete'].includes(method)) continue;
        const inPath = (op.parameters ?? []).filter((p: any) => p.in === 'path').map((p: any) => p.name).sort();
        expect(inPath, `${method.toUpperCase()} ${path} path parameters`).to.deep.equal(names);
        expect(Object.keys(op.responses), `${method.toUpperCase()} ${path}`).not.to.be.empty;
      }
    }
  });

  it('is served at /openapi.json exactly as kept in the repo', async () => {
    const res = await call(gw, 'GET', '/openapi.json');
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.match(/^application\/json/);
    expect(res.body).to.deep.equal(openapi);
  });

  it('renders a self-contained human-readable page at /docs', async () => {
    const res = await fetch(`${gw.apiUrl}/docs`);
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.match(/^text\/html/);
    const html = await res.text();
    for (const path of Object.keys(openapi.paths)) expect(html, path).to.include(path.replace(/&/g, '&amp;'));
    expect(html).to.include('Idempotency-Key');
    expect(html).not.to.match(/<script|<link|src=|https?:\/\/(?!www\.w3\.org)/i); // nothing fetched from anywhere
    expect(res.headers.get('content-security-policy')).to.include("default-src 'none'");
  });

  it('describes what the API answers (responses validated against the document)', async () => {
    const m = await createTestMerchant(gw, 'Spec Shop');
    expectMatchesSpec('GET', '/health', await call(gw, 'GET', '/health'));
    expectMatchesSpec('GET', '/api/v1/chains', await call(gw, 'GET', '/api/v1/chains', { auth: m.api_key }));
    expectMatchesSpec('POST', '/api/v1/auth/token', await call(gw, 'POST', '/api/v1/auth/token', { body: { api_key: m.api_key } }));
    expectMatchesSpec('POST', '/api/v1/auth/token', await call(gw, 'POST', '/api/v1/auth/token', { body: { api_key: 'sk_test_nope' } }));
    expectMatchesSpec('GET', '/api/v1/payments', await call(gw, 'GET', '/api/v1/payments', { auth: m.api_key }));
    expectMatchesSpec('GET', '/api/v1/payments/{id}', await call(gw, 'GET', '/api/v1/payments/pay_doesnotexist00000000', { auth: m.api_key }));
    expectMatchesSpec('GET', '/api/v1/events', await call(gw, 'GET', '/api/v1/events', { auth: m.api_key }));
    expectMatchesSpec('POST', '/api/v1/webhook-endpoints', await call(gw, 'POST', '/api/v1/webhook-endpoints', { auth: m.api_key, body: { url: 'http://127.0.0.1:9/h' } }));
    expectMatchesSpec('GET', '/api/v1/webhook-endpoints', await call(gw, 'GET', '/api/v1/webhook-endpoints', { auth: m.api_key }));
    expectMatchesSpec('POST', '/api/v1/payments', await call(gw, 'POST', '/api/v1/payments', { auth: m.api_key, rawBody: 'x', headers: { 'content-type': 'text/plain' } }));
    expectMatchesSpec('POST', '/api/v1/payments', await call(gw, 'POST', '/api/v1/payments', { auth: m.api_key, body: { amount: '1', currency: 'ETH', metadata: { big: 'x'.repeat(70_000) } } }));
  });
});
