import { expect } from 'chai';
import { Redis } from 'ioredis';
import pg from 'pg';
import { Webhook } from 'standardwebhooks';
import { call, createTestMerchant, startGateway, waitFor, type Gateway } from '../support/gateway.js';
import { startWebhookTarget, type TargetAnswer } from '../support/webhookTarget.js';
import { createWebhookSecretBox, resealWebhookSecrets, SealedSecretError } from '../../shared/webhooks/secretSealing.js';
import { newWebhookSecret } from '../../shared/webhooks/signature.js';
import { handoffKey } from '../../shared/webhooks/firstAttemptHandoff.js';

class RolledBack extends Error {}

/**
 * Durable webhooks on real processes: the attempt log, retries to `failed`, 410 Gone, Retry-After, timeouts,
 * redelivery, secret rotation, test events, PATCH, disabling after days of failures, and a Redis that lost its
 * jobs. The retry schedule is compressed (WEBHOOK_RETRY_SCHEDULE=0.2,0.2,0.2) and the re-queue threshold short.
 */
describe('webhooks: delivery log, retries, endpoint management (API + worker processes)', function () {
  this.timeout(120_000);
  let gw: Gateway;
  const targets: { close(): Promise<void> }[] = [];

  before(async () => {
    gw = await startGateway({
      env: {
        WEBHOOK_RETRY_SCHEDULE: '0.2,0.2,0.2',
        WEBHOOK_TIMEOUT_MS: '1500',
        WEBHOOK_REQUEUE_AFTER_SECONDS: '1',
        MAINTENANCE_INTERVAL_MS: '500',
      },
    });
  });
  after(async () => {
    await Promise.all(targets.map((t) => t.close()));
    await gw?.stop();
  });

  async function target(answer?: (n: number) => TargetAnswer) {
    const t = await startWebhookTarget(answer);
    targets.push(t);
    return t;
  }
  async function endpoint(key: string, url: string, events?: string[]) {
    const res = await call(gw, 'POST', '/api/v1/webhook-endpoints', { auth: key, body: { url, ...(events && { events }) } });
    expect(res.status, JSON.stringify(res.body)).to.equal(201);
    return res.body as { id: string; secret: string };
  }
  const sendTest = async (key: string, endpointId: string) => {
    const res = await call(gw, 'POST', `/api/v1/webhook-endpoints/${endpointId}/test`, { auth: key });
    expect(res.status, JSON.stringify(res.body)).to.equal(202);
    return res.body as { event_id: string; delivery_id: string };
  };
  const delivery = async (key: string, id: string) => {
    const res = await call(gw, 'GET', `/api/v1/webhook-deliveries/${id}`, { auth: key });
    expect(res.status).to.equal(200);
    return res.body;
  };
  const waitForDelivery = (key: string, id: string, check: (d: any) => boolean, timeout = 30_000) =>
    waitFor(async () => {
      const d = await delivery(key, id);
      return check(d) && d;
    }, timeout, () => gw.logs());

  it('retries a failing endpoint on the schedule, then marks the delivery failed; every attempt is logged with one webhook-id', async () => {
    const m = await createTestMerchant(gw);
    const t = await target(() => ({ status: 500, body: 'database is down' }));
    const ep = await endpoint(m.api_key, t.url);
    const { event_id, delivery_id } = await sendTest(m.api_key, ep.id);

    const d = await waitForDelivery(m.api_key, delivery_id, (x) => x.status === 'failed');
    expect(d).to.include({ event_id, event_type: 'webhook.test', endpoint_id: ep.id, attempt_count: 4, last_status_code: 500, next_attempt_at: null });
    expect(d.attempts.map((a: any) => a.attempt)).to.deep.equal([1, 2, 3, 4]);
    for (const a of d.attempts) {
      expect(a).to.include({ status_code: 500, error: 'HTTP 500', response_snippet: 'database is down' });
      expect(a.duration_ms).to.be.a('number').and.at.least(0);
    }
    expect(t.requests).to.have.length(4);
    expect(new Set(t.requests.map((r) => r.headers['webhook-id']))).to.deep.equal(new Set([event_id]));
    for (const r of t.requests) expect(new Webhook(ep.secret).verify(r.body, r.headers as Record<string, string>)).to.have.property('type', 'webhook.test');

    // The attempt log in Postgres: event, endpoint, attempt number, status, duration, error, snippet.
    const rows = await gw.db('webhook_attempts as a')
      .join('webhook_deliveries as d', 'd.id', 'a.delivery_id')
      .where('d.id', delivery_id)
      .select('d.event_id', 'd.endpoint_id', 'a.attempt', 'a.status_code', 'a.duration_ms', 'a.error', 'a.response_snippet')
      .orderBy('a.attempt');
    expect(rows).to.have.length(4);
    expect(rows[0]).to.include({ event_id, endpoint_id: ep.id, attempt: 1, status_code: 500, error: 'HTTP 500' });

    // Failures alone do not disable an endpoint before WEBHOOK_DISABLE_AFTER_DAYS; the clock has started.
    const after = await call(gw, 'GET', `/api/v1/webhook-endpoints/${ep.id}`, { auth: m.api_key });
    expect(after.body.enabled).to.equal(true);
    expect(after.body.failing_since).to.be.a('string');
  });

  it('lists an endpoint\'s deliveries with their attempts, cursor-paginated, and only to its merchant', async () => {
    const m = await createTestMerchant(gw);
    const t = await target();
    const ep = await endpoint(m.api_key, t.url);
    const sent = [await sendTest(m.api_key, ep.id), await sendTest(m.api_key, ep.id), await sendTest(m.api_key, ep.id)];
    for (const s of sent) await waitForDelivery(m.api_key, s.delivery_id, (x) => x.status === 'succeeded');

    const page1 = await call(gw, 'GET', `/api/v1/webhook-endpoints/${ep.id}/deliveries?limit=2`, { auth: m.api_key });
    expect(page1.status).to.equal(200);
    expect(page1.body.has_more).to.equal(true);
    expect(page1.body.data.map((d: any) => d.id)).to.deep.equal([sent[2].delivery_id, sent[1].delivery_id]);
    expect(page1.body.data[0].attempts).to.have.length(1);
    expect(page1.body.data[0].attempts[0]).to.include({ attempt: 1, status_code: 200, error: null, response_snippet: 'answer 200' });
    const page2 = await call(gw, 'GET', `/api/v1/webhook-endpoints/${ep.id}/deliveries?limit=2&starting_after=${sent[1].delivery_id}`, { auth: m.api_key });
    expect(page2.body.data.map((d: any) => d.id)).to.deep.equal([sent[0].delivery_id]);
    expect(page2.body.has_more).to.equal(false);
    const failedOnly = await call(gw, 'GET', `/api/v1/webhook-endpoints/${ep.id}/deliveries?status=failed`, { auth: m.api_key });
    expect(failedOnly.body.data).to.deep.equal([]);

    const other = await createTestMerchant(gw, 'Other Shop');
    expect((await call(gw, 'GET', `/api/v1/webhook-endpoints/${ep.id}/deliveries`, { auth: other.api_key })).status).to.equal(404);
    expect((await call(gw, 'GET', `/api/v1/webhook-deliveries/${sent[0].delivery_id}`, { auth: other.api_key })).status).to.equal(404);
    expect((await call(gw, 'POST', `/api/v1/webhook-deliveries/${sent[0].delivery_id}/redeliver`, { auth: other.api_key })).status).to.equal(404);
  });

  it('410 Gone disables the endpoint, fails its pending deliveries and emits webhook_endpoint.disabled; PATCH re-enables it', async () => {
    const m = await createTestMerchant(gw);
    const gone = await target((n) => (n === 1 ? { status: 410 } : { status: 200 }));
    const watcher = await target();
    const goneEp = await endpoint(m.api_key, gone.url, ['payment.created']);
    await endpoint(m.api_key, watcher.url, ['webhook_endpoint.disabled']);
    // Another delivery to it, waiting for a retry in an hour: the 410 must fail it too.
    await gw.db('events').insert({ id: 'evt_waitingRetry0000000001', merchant_id: m.id, type: 'payment.created', data: {} });
    await gw.db('webhook_deliveries').insert({ id: 'whd_waitingRetry0000000001', event_id: 'evt_waitingRetry0000000001', endpoint_id: goneEp.id, attempts: 1, next_attempt_at: new Date(Date.now() + 3_600_000) });

    const pay = await call(gw, 'POST', '/api/v1/payments', { auth: m.api_key, body: { amount: '0.01', currency: 'ETH' } });
    expect(pay.status).to.equal(201);
    const disabledEvent = await waitFor(async () => watcher.requests.find((r) => r.event.type === 'webhook_endpoint.disabled'), 30_000, () => gw.logs());
    expect(disabledEvent.event.data).to.include({ id: goneEp.id, enabled: false, disabled_reason: 'gone' });

    const ep = (await call(gw, 'GET', `/api/v1/webhook-endpoints/${goneEp.id}`, { auth: m.api_key })).body;
    expect(ep).to.include({ enabled: false, disabled_reason: 'gone' });
    const deliveries = (await call(gw, 'GET', `/api/v1/webhook-endpoints/${goneEp.id}/deliveries`, { auth: m.api_key })).body.data;
    expect(deliveries).to.have.length(2);
    expect(deliveries[0]).to.include({ status: 'failed', attempt_count: 1, last_status_code: 410 });
    expect(deliveries[1]).to.include({ id: 'whd_waitingRetry0000000001', status: 'failed', last_error: 'endpoint disabled: the endpoint answered 410 Gone' });

    // Nothing new is sent to a disabled endpoint, and a test event is refused.
    await call(gw, 'POST', '/api/v1/payments', { auth: m.api_key, body: { amount: '0.02', currency: 'ETH' } });
    expect((await call(gw, 'POST', `/api/v1/webhook-endpoints/${goneEp.id}/test`, { auth: m.api_key })).body.error.code).to.equal('endpoint_disabled');
    expect(await gw.db('webhook_deliveries').where({ endpoint_id: goneEp.id }).count('* as n').first()).to.deep.equal({ n: 2 });

    const refused = await call(gw, 'POST', `/api/v1/webhook-deliveries/${deliveries[0].id}/redeliver`, { auth: m.api_key });
    expect(refused.status).to.equal(409);
    expect(refused.body.error.code).to.equal('endpoint_disabled');

    const reenabled = await call(gw, 'PATCH', `/api/v1/webhook-endpoints/${goneEp.id}`, { auth: m.api_key, body: { enabled: true } });
    expect(reenabled.status).to.equal(200);
    expect(reenabled.body).to.include({ enabled: true, disabled_reason: null, failing_since: null });
    const again = await call(gw, 'POST', '/api/v1/payments', { auth: m.api_key, body: { amount: '0.03', currency: 'ETH' } });
    await waitFor(async () => gone.requests.find((r) => r.event.data?.id === again.body.id), 30_000, () => gw.logs());
    // The delivery that met the 410 can be sent again now.
    expect((await call(gw, 'POST', `/api/v1/webhook-deliveries/${deliveries[0].id}/redeliver`, { auth: m.api_key })).status).to.equal(202);
    await waitForDelivery(m.api_key, deliveries[0].id, (x) => x.status === 'succeeded' && x.attempt_count === 2);
  });

  it('honours Retry-After on 503 (the next attempt waits as asked, not the 0.2 s schedule)', async () => {
    const m = await createTestMerchant(gw);
    const t = await target((n) => (n === 1 ? { status: 503, headers: { 'retry-after': '2' } } : { status: 200 }));
    const ep = await endpoint(m.api_key, t.url);
    const { delivery_id } = await sendTest(m.api_key, ep.id);
    const d = await waitForDelivery(m.api_key, delivery_id, (x) => x.status === 'succeeded');
    expect(d.attempts.map((a: any) => a.status_code)).to.deep.equal([503, 200]);
    // A lower bound only: the receiver asked for 2 s, the schedule alone would have waited 0.2 s.
    expect(t.requests[1].receivedAt - t.requests[0].receivedAt).to.be.at.least(1900);
  });

  it('an endpoint that does not answer times out after WEBHOOK_TIMEOUT_MS, and that attempt is logged', async () => {
    const m = await createTestMerchant(gw);
    const t = await target(() => 'hang');
    const ep = await endpoint(m.api_key, t.url);
    const { delivery_id } = await sendTest(m.api_key, ep.id);
    const d = await waitForDelivery(m.api_key, delivery_id, (x) => x.attempts.length >= 1);
    expect(d.attempts[0]).to.include({ status_code: null, error: 'timeout after 1500 ms' });
    expect(d.attempts[0].duration_ms).to.be.at.least(1400);
    await call(gw, 'DELETE', `/api/v1/webhook-endpoints/${ep.id}`, { auth: m.api_key });
  });

  it('redelivers a succeeded delivery with the same webhook-id; a pending one cannot be redelivered', async () => {
    const m = await createTestMerchant(gw);
    const t = await target();
    const ep = await endpoint(m.api_key, t.url);
    const { event_id, delivery_id } = await sendTest(m.api_key, ep.id);
    await waitForDelivery(m.api_key, delivery_id, (x) => x.status === 'succeeded');

    const res = await call(gw, 'POST', `/api/v1/webhook-deliveries/${delivery_id}/redeliver`, { auth: m.api_key });
    expect(res.status, JSON.stringify(res.body)).to.equal(202);
    expect(res.body).to.include({ id: delivery_id, status: 'pending' });
    const d = await waitForDelivery(m.api_key, delivery_id, (x) => x.status === 'succeeded' && x.attempt_count === 2);
    expect(d.attempts.map((a: any) => a.attempt)).to.deep.equal([1, 2]);
    expect(t.requests.map((r) => r.headers['webhook-id'])).to.deep.equal([event_id, event_id]);

    await gw.db('webhook_deliveries').where({ id: delivery_id }).update({ status: 'pending', next_attempt_at: new Date(Date.now() + 3_600_000) });
    const pending = await call(gw, 'POST', `/api/v1/webhook-deliveries/${delivery_id}/redeliver`, { auth: m.api_key });
    expect(pending.status).to.equal(409);
    expect(pending.body.error.code).to.equal('delivery_pending');
  });

  it('rotate-secret: old and new secrets both sign for the grace period, then only the new one', async () => {
    const m = await createTestMerchant(gw);
    const t = await target();
    const ep = await endpoint(m.api_key, t.url);
    const rotated = await call(gw, 'POST', `/api/v1/webhook-endpoints/${ep.id}/rotate-secret`, { auth: m.api_key });
    expect(rotated.status).to.equal(200);
    const newSecret: string = rotated.body.secret;
    expect(newSecret).to.match(/^whsec_/).and.not.equal(ep.secret);
    const graceHours = (Date.parse(rotated.body.previous_secret_expires_at) - Date.now()) / 3_600_000;
    expect(graceHours).to.be.within(23.9, 24.1);

    await sendTest(m.api_key, ep.id);
    const r1 = await waitFor(async () => t.requests[0], 30_000, () => gw.logs());
    expect(String(r1.headers['webhook-signature']).split(' ')).to.have.length(2);
    for (const s of [ep.secret, newSecret]) expect(new Webhook(s).verify(r1.body, r1.headers as Record<string, string>)).to.have.property('type', 'webhook.test');

    // Once the grace period is over, the old secret no longer signs.
    await gw.db('webhook_endpoints').where({ id: ep.id }).update({ previous_secret_expires_at: new Date(Date.now() - 1000) });
    await sendTest(m.api_key, ep.id);
    const r2 = await waitFor(async () => t.requests[1], 30_000, () => gw.logs());
    expect(String(r2.headers['webhook-signature']).split(' ')).to.have.length(1);
    expect(new Webhook(newSecret).verify(r2.body, r2.headers as Record<string, string>)).to.have.property('type', 'webhook.test');
    expect(() => new Webhook(ep.secret).verify(r2.body, r2.headers as Record<string, string>)).to.throw();
    expect((await call(gw, 'POST', `/api/v1/webhook-endpoints/we_doesnotexist000/rotate-secret`, { auth: m.api_key })).status).to.equal(404);
  });

  it('stores signing secrets sealed: the database holds neither secret, and the worker still signs with both', async () => {
    const m = await createTestMerchant(gw);
    const t = await target();
    const ep = await endpoint(m.api_key, t.url);
    const rotated = await call(gw, 'POST', `/api/v1/webhook-endpoints/${ep.id}/rotate-secret`, { auth: m.api_key });
    const stored = await gw.db('webhook_endpoints').where({ id: ep.id }).first('secret', 'previous_secret');
    const box = createWebhookSecretBox([gw.env.WEBHOOK_SECRETS_KEY]);
    for (const [value, secret] of [[stored.secret, rotated.body.secret], [stored.previous_secret, ep.secret]]) {
      expect(value).to.match(/^v1\.[0-9a-f]{8}\./).and.not.include(secret).and.not.include(secret.slice(6));
      expect(box.open(ep.id, value)).to.equal(secret);
    }
    // Bound to its endpoint: a sealed secret copied onto another endpoint's row does not open there.
    expect(() => box.open('we_someoneelse', stored.secret)).to.throw(SealedSecretError);
    // Nothing else in the database holds them either (the insert returned the row; idempotency keys were not used).
    const dump = JSON.stringify(await gw.db.raw(`SELECT to_jsonb(w) AS row FROM webhook_endpoints w`));
    expect(dump).not.to.include(rotated.body.secret.slice(6));

    await sendTest(m.api_key, ep.id);
    const r = await waitFor(async () => t.requests[0], 30_000, () => gw.logs());
    for (const s of [ep.secret, rotated.body.secret]) expect(new Webhook(s).verify(r.body, r.headers as Record<string, string>)).to.have.property('type', 'webhook.test');
  });

  it('re-seals a secret stored in clear (before sealing existed) and keeps signing with it', async () => {
    const m = await createTestMerchant(gw);
    const t = await target();
    const ep = await endpoint(m.api_key, t.url);
    const legacy = newWebhookSecret();
    await gw.db('webhook_endpoints').where({ id: ep.id }).update({ secret: legacy });
    // The worker's maintenance pass (every 500 ms here) seals it under the current key.
    const sealed = await waitFor(async () => {
      const row = await gw.db('webhook_endpoints').where({ id: ep.id }).first('secret');
      return row.secret !== legacy && row.secret;
    }, 30_000, () => gw.logs());
    expect(createWebhookSecretBox([gw.env.WEBHOOK_SECRETS_KEY]).open(ep.id, sealed)).to.equal(legacy);
    await sendTest(m.api_key, ep.id);
    const r = await waitFor(async () => t.requests[0], 30_000, () => gw.logs());
    expect(new Webhook(legacy).verify(r.body, r.headers as Record<string, string>)).to.have.property('type', 'webhook.test');
  });

  it('never sends a delivery whose signing secret no configured key opens: each attempt fails, unsent', async () => {
    const m = await createTestMerchant(gw);
    const t = await target();
    const ep = await endpoint(m.api_key, t.url);
    // Sealed under a key this gateway was never given (as after a key change without WEBHOOK_SECRETS_KEY_PREVIOUS).
    const foreign = createWebhookSecretBox(['f'.repeat(40)]).seal(ep.id, newWebhookSecret());
    await gw.db('webhook_endpoints').where({ id: ep.id }).update({ secret: foreign });
    const { delivery_id } = await sendTest(m.api_key, ep.id);
    const d = await waitForDelivery(m.api_key, delivery_id, (x) => x.status === 'failed');
    expect(d.attempts).to.have.length(4);
    for (const a of d.attempts) {
      expect(a).to.include({ status_code: null, error: 'not sent: the signing secret could not be read (server configuration); retrying' });
    }
    expect(t.requests).to.have.length(0);
    // Left as it is by the workers' re-sealing (nothing opens it), not overwritten.
    expect((await gw.db('webhook_endpoints').where({ id: ep.id }).first('secret')).secret).to.equal(foreign);
  });

  it('a key rotation re-seals every secret under the new key; values under the previous key still open until then', async () => {
    const m = await createTestMerchant(gw);
    const ep = await endpoint(m.api_key, 'http://127.0.0.1:9/never-called');
    const rotated = await call(gw, 'POST', `/api/v1/webhook-endpoints/${ep.id}/rotate-secret`, { auth: m.api_key });
    const before = createWebhookSecretBox([gw.env.WEBHOOK_SECRETS_KEY]);
    const after = createWebhookSecretBox(['n'.repeat(40), gw.env.WEBHOOK_SECRETS_KEY]); // new key, the old one as previous
    const onlyNew = createWebhookSecretBox(['n'.repeat(40)]);
    // In a transaction rolled back at the end: the running worker keeps the old key only and must keep its rows.
    await gw.db
      .transaction(async (trx) => {
        const row = await trx('webhook_endpoints').where({ id: ep.id }).first('secret', 'previous_secret');
        expect(after.open(ep.id, row.secret)).to.equal(rotated.body.secret); // the previous key still opens
        expect(() => onlyNew.open(ep.id, row.secret)).to.throw(SealedSecretError, /WEBHOOK_SECRETS_KEY_PREVIOUS/);
        const { resealed } = await resealWebhookSecrets(trx, after);
        expect(resealed).to.be.at.least(1);
        const now = await trx('webhook_endpoints').where({ id: ep.id }).first('secret', 'previous_secret');
        for (const value of [now.secret, now.previous_secret]) expect(value.startsWith(after.currentPrefix)).to.equal(true);
        expect(onlyNew.open(ep.id, now.secret)).to.equal(rotated.body.secret);
        expect(onlyNew.open(ep.id, now.previous_secret)).to.equal(ep.secret);
        expect(() => before.open(ep.id, now.secret)).to.throw(SealedSecretError);
        // A second pass finds nothing left to do.
        expect((await resealWebhookSecrets(trx, after)).resealed).to.equal(0);
        throw new RolledBack();
      })
      .catch((err) => {
        if (!(err instanceof RolledBack)) throw err;
      });
  });

  it('test event goes to that endpoint only; PATCH changes url and events and validates them', async () => {
    const m = await createTestMerchant(gw);
    const a = await target();
    const b = await target();
    const epA = await endpoint(m.api_key, a.url);
    await endpoint(m.api_key, b.url);
    const { event_id, delivery_id } = await sendTest(m.api_key, epA.id);
    await waitForDelivery(m.api_key, delivery_id, (x) => x.status === 'succeeded');
    expect(a.requests.map((r) => r.event.id)).to.deep.equal([event_id]);
    expect(a.requests[0].event.data.endpoint.id).to.equal(epA.id);
    expect(b.requests).to.have.length(0);

    const patched = await call(gw, 'PATCH', `/api/v1/webhook-endpoints/${epA.id}`, { auth: m.api_key, body: { url: b.url, events: ['payment.confirmed'] } });
    expect(patched.status).to.equal(200);
    expect(patched.body).to.include({ url: b.url });
    expect(patched.body.events).to.deep.equal(['payment.confirmed']);
    const bad = await call(gw, 'PATCH', `/api/v1/webhook-endpoints/${epA.id}`, { auth: m.api_key, body: { events: ['payment.nope'] } });
    expect(bad.status).to.equal(400);
    expect(bad.body.error.param).to.match(/^events/);
    const unknown = await call(gw, 'PATCH', `/api/v1/webhook-endpoints/${epA.id}`, { auth: m.api_key, body: { secret: 'x' } });
    expect(unknown.status).to.equal(400);
    const other = await createTestMerchant(gw, 'Other Shop');
    expect((await call(gw, 'PATCH', `/api/v1/webhook-endpoints/${epA.id}`, { auth: other.api_key, body: { enabled: true } })).status).to.equal(404);

    const off = await call(gw, 'PATCH', `/api/v1/webhook-endpoints/${epA.id}`, { auth: m.api_key, body: { enabled: false } });
    expect(off.body).to.include({ enabled: false, disabled_reason: 'merchant' });
  });

  it('an endpoint that has only failed for WEBHOOK_DISABLE_AFTER_DAYS is disabled, with an event; a success resets the clock', async () => {
    const m = await createTestMerchant(gw);
    const failing = await target(() => ({ status: 500 }));
    const watcher = await target();
    const ep = await endpoint(m.api_key, failing.url);
    await endpoint(m.api_key, watcher.url, ['webhook_endpoint.disabled']);
    // Its first failure was 6 days ago (default WEBHOOK_DISABLE_AFTER_DAYS = 5).
    await gw.db('webhook_endpoints').where({ id: ep.id }).update({ failing_since: new Date(Date.now() - 6 * 86_400_000) });
    const { delivery_id } = await sendTest(m.api_key, ep.id);

    const disabled = await waitFor(async () => watcher.requests.find((r) => r.event.type === 'webhook_endpoint.disabled'), 30_000, () => gw.logs());
    expect(disabled.event.data).to.include({ id: ep.id, enabled: false, disabled_reason: 'failing' });
    expect(disabled.event.data.reason).to.match(/^every attempt failed since /);
    const d = await delivery(m.api_key, delivery_id);
    expect(d).to.include({ status: 'failed', attempt_count: 1 });
    expect(await gw.db('events').where({ type: 'webhook_endpoint.disabled' }).whereRaw(`data->>'id' = ?`, [ep.id]).count('* as n').first()).to.deep.equal({ n: 1 });

    // A success clears failing_since: an endpoint that recovers is not disabled later.
    const ok = await target();
    const healthy = await endpoint(m.api_key, ok.url);
    await gw.db('webhook_endpoints').where({ id: healthy.id }).update({ failing_since: new Date(Date.now() - 86_400_000) });
    const t2 = await sendTest(m.api_key, healthy.id);
    await waitForDelivery(m.api_key, t2.delivery_id, (x) => x.status === 'succeeded');
    expect((await call(gw, 'GET', `/api/v1/webhook-endpoints/${healthy.id}`, { auth: m.api_key })).body).to.include({ enabled: true, failing_since: null });
  });

  it('a failed attempt being recorded does not hold up payment creation for the endpoint\'s merchant', async () => {
    const m = await createTestMerchant(gw);
    const t = await target(() => 'hang');
    const ep = await endpoint(m.api_key, t.url);
    const { delivery_id } = await sendTest(m.api_key, ep.id);
    await waitFor(async () => t.requests.length === 1, 20_000, () => gw.logs());
    // The attempt is leased and in flight. Holding the endpoint's slots lock (webhook_lock_endpoint_slots) in a
    // transaction of our own stops the failure's transaction at its last step, with the endpoint's row lock taken.
    const holder = new pg.Client({ connectionString: gw.databaseUrl });
    await holder.connect();
    let timer: NodeJS.Timeout | undefined;
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT webhook_lock_endpoint_slots($1)', [ep.id]);
      t.release(500);
      // The worker's transaction waits for the slots lock, and has locked a row of webhook_endpoints (RowShareLock).
      await waitFor(async () => {
        const { rows } = await holder.query(
          `SELECT 1 FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid AND l.relation = 'webhook_endpoints'::regclass AND l.mode = 'RowShareLock'
            WHERE a.wait_event_type = 'Lock' AND a.wait_event = 'advisory' AND a.application_name = 'payflow-worker'`,
        );
        return rows.length > 0;
      }, 20_000, () => gw.logs());

      // A new payment's delivery to that endpoint checks its foreign key (FOR KEY SHARE) on the locked row.
      const created = await Promise.race([
        call(gw, 'POST', '/api/v1/payments', { auth: m.api_key, body: { amount: '0.01', currency: 'ETH' } }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('payment creation waited on the endpoint row lock')), 5000);
        }),
      ]);
      expect(created.status, JSON.stringify(created.body)).to.equal(201);
      const deliveries = await gw.db('webhook_deliveries as d').join('events as e', 'e.id', 'd.event_id').where({ 'e.payment_id': created.body.id, 'd.endpoint_id': ep.id });
      expect(deliveries).to.have.length(1);
    } finally {
      clearTimeout(timer);
      await holder.end(); // ends our transaction, and with it the slots lock
    }
    await waitForDelivery(m.api_key, delivery_id, (x) => x.attempt_count >= 1 && x.attempts[0].status_code === 500);
  });

  it('an API process killed between a payment\'s commit and sending its first webhook job: the webhook still arrives', async () => {
    const m = await createTestMerchant(gw);
    const t = await target();
    await endpoint(m.api_key, t.url);
    // This API process SIGKILLs itself once the creating statement has committed, before it hands the delivery to
    // the workers (shared/crashPoint.ts): the request gets no answer and no outbox row was written.
    const doomed = await gw.startApi({ PAYFLOW_CRASH_AT: 'before_first_attempts' });
    const answer = await fetch(`http://127.0.0.1:${doomed.port}/api/v1/payments`, {
      method: 'POST',
      headers: { authorization: `Bearer ${m.api_key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ amount: '0.02', currency: 'ETH' }),
    }).then(
      (res) => `answered ${res.status}`,
      () => 'no answer',
    );
    expect(answer).to.equal('no answer');
    await waitFor(async () => doomed.child.signalCode !== null, 10_000, () => doomed.output());
    expect(doomed.child.signalCode).to.equal('SIGKILL');
    const [payment] = await gw.db('payments').where({ merchant_id: m.id });
    expect(payment, 'the payment committed before the crash').to.not.equal(undefined);

    // The worker's maintenance pass finds the delivery overdue with no job and re-queues it.
    await waitFor(async () => t.requests.some((r) => r.event.type === 'payment.created' && r.event.data.id === payment.id), 20_000, () => gw.logs());
    expect(t.requests.filter((r) => r.event.data.id === payment.id)).to.have.length(1);
  });

  it('a worker killed between taking a handed-over first attempt and adding its job: the webhook still arrives, once', async () => {
    const m = await createTestMerchant(gw);
    const t = await target();
    await endpoint(m.api_key, t.url);
    // The only worker running SIGKILLs itself once it has taken the delivery off the hand-over list, before BullMQ
    // has its job (shared/crashPoint.ts): the entry is gone from Redis and no job exists.
    const [healthy] = gw.workers;
    healthy.kill('SIGTERM');
    await waitFor(async () => healthy.exitCode !== null, 30_000, () => gw.logs());
    const doomed = await gw.startWorker({ PAYFLOW_CRASH_AT: 'after_first_attempts_taken' });
    const created = await call(gw, 'POST', '/api/v1/payments', { auth: m.api_key, body: { amount: '0.02', currency: 'ETH' } });
    expect(created.status).to.equal(201);
    await waitFor(async () => doomed.signalCode !== null, 20_000, () => gw.logs());
    expect(doomed.signalCode).to.equal('SIGKILL');
    const redis = new Redis(gw.stack.redisUrl, { maxRetriesPerRequest: 3 });
    try {
      expect(await redis.llen(handoffKey(gw.env.QUEUE_PREFIX))).to.equal(0);
    } finally {
      redis.disconnect();
    }
    expect(t.requests).to.have.length(0);

    // A new worker's maintenance pass finds the delivery overdue with no job and re-queues it.
    await gw.startWorker();
    await waitFor(async () => t.requests.some((r) => r.event.type === 'payment.created' && r.event.data.id === created.body.id), 20_000, () => gw.logs());
    await new Promise((r) => setTimeout(r, 1500)); // a second copy would come within a maintenance pass or two
    expect(t.requests.filter((r) => r.event.data.id === created.body.id)).to.have.length(1);
  });

  it('a delivery whose BullMQ job vanished (Redis lost its keys) is re-queued from Postgres and delivered', async () => {
    const m = await createTestMerchant(gw);
    const t = await target((n) => (n === 1 ? { status: 503, headers: { 'retry-after': '3' } } : { status: 200 }));
    const ep = await endpoint(m.api_key, t.url);
    const { delivery_id } = await sendTest(m.api_key, ep.id);
    const redis = new Redis(gw.stack.redisUrl, { maxRetriesPerRequest: 3 });
    try {
      const prefix = `${gw.env.QUEUE_PREFIX}:webhooks`;
      // The retry (due in 3 s) sits in BullMQ's delayed set once the relay has moved it out of the outbox.
      await waitFor(async () => (await redis.zcard(`${prefix}:delayed`)) >= 1 && Number((await gw.db('outbox').count('* as n').first())!.n) === 0, 20_000, () => gw.logs());
      const keys = await redis.keys(`${prefix}:*`);
      expect(keys.length).to.be.greaterThan(0);
      await redis.del(...keys);
      expect(await redis.zcard(`${prefix}:delayed`)).to.equal(0);
      const row = await gw.db('webhook_deliveries').where({ id: delivery_id }).first();
      expect(row.status).to.equal('pending');

      const d = await waitForDelivery(m.api_key, delivery_id, (x) => x.status === 'succeeded', 40_000);
      expect(d.attempts.map((a: any) => a.status_code)).to.deep.equal([503, 200]);
    } finally {
      redis.disconnect();
    }
  });
});
