import { expect } from 'chai';
import net from 'node:net';
import path from 'node:path';
import { call, startGateway, waitFor, type Gateway } from '../support/gateway.js';
import { freePort } from '../../scripts/devstack/ports.js';
import { startRedis, type RedisHandle } from '../../scripts/devstack/redis.js';
import { createRedis } from '../../shared/queues/redis.js';
import { pingRedis } from '../../api/routes/opsReady.js';

/** GET /health is liveness; GET /ready says whether this API can serve: Postgres, Redis, every chain, schema. */
describe('ops: /health and /ready', function () {
  this.timeout(120_000);

  describe('with everything up', () => {
    let gw: Gateway;
    before(async () => {
      gw = await startGateway({ workers: 0 });
    });
    after(async () => gw?.stop());

    it('/health is public and touches nothing; /ready answers 200 with every check ok', async () => {
      const health = await call(gw, 'GET', '/health');
      expect(health.status).to.equal(200);
      const ready = await call(gw, 'GET', '/ready');
      expect(ready.status).to.equal(200);
      expect(ready.body).to.deep.equal({
        status: 'ready',
        failed: [],
        checks: { postgres: { ok: true }, redis: { ok: true }, migrations: { ok: true }, chains: { 31337: { ok: true } } },
      });
    });

    it('answers 503 naming "migrations" while the schema is behind the code, and 200 again once it is current', async () => {
      const newest = await gw.db('knex_migrations').orderBy('id', 'desc').first();
      await gw.db('knex_migrations').where({ id: newest.id }).delete();
      try {
        const res = await call(gw, 'GET', '/ready');
        expect(res.status).to.equal(503);
        expect(res.body.failed).to.deep.equal(['migrations']);
        expect(res.body.checks.migrations.error).to.match(/pending migrations/);
      } finally {
        await gw.db('knex_migrations').insert(newest);
      }
      expect((await call(gw, 'GET', '/ready')).status).to.equal(200);
    });
  });

  describe('with a dead chain RPC and then a dead Redis', () => {
    let gw: Gateway;
    let redis: RedisHandle;
    before(async () => {
      const redisPort = await freePort();
      const deadRpcPort = await freePort(); // nothing listens there
      const { getTestStack } = await import('../support/stack.js');
      const stack = await getTestStack();
      redis = await startRedis({ port: redisPort, dir: path.join(stack.dir, `ready-redis-${redisPort}`) });
      gw = await startGateway({
        workers: 0,
        env: { REDIS_URL: redis.url },
        extraChains: [{ chain_id: 424242, name: 'dead chain', rpc_url: `http://127.0.0.1:${deadRpcPort}`, confirmations: 1, block_time: 1 }],
      });
    });
    after(async () => {
      await gw?.stop();
      await redis?.stop();
    });

    it('answers 503 naming the chain that does not answer, and says the others are fine', async () => {
      const res = await call(gw, 'GET', '/ready');
      expect(res.status).to.equal(503);
      expect(res.body.status).to.equal('not_ready');
      expect(res.body.failed).to.deep.equal(['chain:424242']);
      expect(res.body.checks.chains['31337']).to.deep.equal({ ok: true });
      expect(res.body.checks.chains['424242'].ok).to.equal(false);
      expect(res.body.checks.chains['424242'].error).to.be.a('string');
      expect(JSON.stringify(res.body)).to.not.include('127.0.0.1'); // no hosts or URLs in a public answer
    });

    it('answers 503 naming redis once Redis is gone, within the check timeout', async () => {
      await redis.stop();
      const res = await waitFor(async () => {
        const r = await call(gw, 'GET', '/ready');
        return r.body.failed.includes('redis') && r;
      }, 20_000);
      expect(res.status).to.equal(503);
      expect(res.body.failed).to.deep.equal(['redis', 'chain:424242']);
      expect(res.body.checks.postgres).to.deep.equal({ ok: true });
      expect((await call(gw, 'GET', '/health')).status).to.equal(200); // liveness does not depend on Redis
    });
  });

  describe("the Redis check on the API's own (producer) connection", () => {
    it('waits for a connection still being made, so a fresh API is not reported without Redis', async () => {
      const { getTestStack } = await import('../support/stack.js');
      const redis = createRedis((await getTestStack()).redisUrl, 'producer');
      try {
        expect(redis.status).to.be.oneOf(['connecting', 'connect']); // a PING now would be refused
        await pingRedis(redis);
        expect(redis.status).to.equal('ready');
      } finally {
        redis.disconnect();
      }
    });

    it('still fails, within its timeout, when nothing answers or a server accepts and never replies', async () => {
      const silent = net.createServer(() => {}); // accepts, then says nothing: the client stays in 'connect'
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      const urls = [`redis://127.0.0.1:${await freePort()}`, `redis://127.0.0.1:${(silent.address() as net.AddressInfo).port}`];
      try {
        for (const url of urls) {
          const redis = createRedis(url, 'producer');
          const started = Date.now();
          try {
            const pings = await Promise.allSettled([pingRedis(redis, 1000), pingRedis(redis, 1000)]); // two at once share one wait
            expect(pings.map((p) => p.status), url).to.deep.equal(['rejected', 'rejected']);
            expect(Date.now() - started, url).to.be.below(2500);
            // The wait's own listener (`done`) is gone (ioredis keeps one of its own per connection attempt).
            const ours = (event: string) => redis.rawListeners(event).filter((l) => ((l as { listener?: Function }).listener ?? l).name === 'done');
            expect(['ready', 'close', 'end'].flatMap(ours), `${url}: listeners left behind`).to.deep.equal([]);
          } finally {
            redis.disconnect();
          }
        }
      } finally {
        silent.close();
      }
    });
  });
});
