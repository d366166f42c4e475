import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { call, createTestMerchant, startGateway, waitFor, type Gateway } from '../support/gateway.js';
import { chainClient } from '../support/chain.js';
import { startWebhookReceiver } from '../support/webhookReceiver.js';
import { parseMetrics, sampleSum, startPrometheus, workerMetricsPorts, type Sample } from '../support/prometheus.js';
import { freePort } from '../../scripts/devstack/ports.js';

/**
 * Prometheus metrics from the API and from each worker process, scraped by a real Prometheus server.
 */
describe('ops: Prometheus metrics (API + two workers, real Prometheus)', function () {
  this.timeout(180_000);
  let gw: Gateway;
  let prom: Awaited<ReturnType<typeof startPrometheus>>;
  let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;
  let workerPorts: number[];
  const metricsToken = `mt_${randomBytes(12).toString('hex')}`;

  before(async () => {
    // Two workers share this host: each takes the first free port of the range (the documented multi-worker scheme).
    const first = await freePort();
    gw = await startGateway({
      workers: 2,
      env: { METRICS_TOKEN: metricsToken, LOG_LEVEL: 'info', WORKER_METRICS_PORT_RANGE: `${first}-${Math.min(first + 40, 65535)}` },
    });
    workerPorts = await waitFor(async () => {
      const ports = workerMetricsPorts(gw.logs());
      return ports.length === 2 && ports;
    }, 30_000, () => gw.logs());
    receiver = await startWebhookReceiver();
  });
  after(async () => {
    await prom?.stop();
    await receiver?.close();
    await gw?.stop();
  });

  const scrape = (url: string, auth?: string) => fetch(url, { headers: auth ? { authorization: auth } : {} });

  it('answers 401 without the token and 200 with it (Bearer or Basic), on the API and on each worker', async () => {
    expect(new Set(workerPorts).size).to.equal(2);
    const urls = [`${gw.apiUrl}/metrics`, ...workerPorts.map((p) => `http://127.0.0.1:${p}/metrics`)];
    for (const url of urls) {
      const anonymous = await scrape(url);
      expect(anonymous.status, url).to.equal(401);
      expect(anonymous.headers.get('www-authenticate')).to.match(/^Basic/);
      expect((await scrape(url, 'Bearer wrong-token-wrong-token')).status, url).to.equal(401);
      expect((await scrape(url, gw.adminToken.replace(/^/, 'Bearer '))).status, 'admin token is not the metrics token').to.equal(401);
      const bearer = await scrape(url, `Bearer ${metricsToken}`);
      expect(bearer.status, url).to.equal(200);
      expect(bearer.headers.get('content-type')).to.match(/^text\/plain/);
      const text = await bearer.text();
      expect(text).to.match(/^payflow_process_cpu_user_seconds_total/m);
      const basic = await scrape(url, `Basic ${Buffer.from(`prometheus:${metricsToken}`).toString('base64')}`);
      expect(basic.status, url).to.equal(200);
    }
  });

  it('counts the payment story: route templates, creation, transitions, transfers, webhooks, chain lag, queue depths', async () => {
    const merchant = await createTestMerchant(gw);
    await call(gw, 'POST', '/api/v1/webhook-endpoints', { auth: merchant.api_key, body: { url: receiver.url } });
    const chain = chainClient(gw.stack.rpcUrl, gw.stack.usdcAddress);
    const created = await call(gw, 'POST', '/api/v1/payments', { auth: merchant.api_key, body: { amount: '0.01', currency: 'ETH' } });
    expect(created.status).to.equal(201);
    await call(gw, 'GET', `/api/v1/payments/${created.body.id}`, { auth: merchant.api_key });
    await chain.sendEth(3, created.body.address, 10_000_000_000_000_000n);
    await chain.mine(2);
    await waitFor(async () => (await call(gw, 'GET', `/api/v1/payments/${created.body.id}`, { auth: merchant.api_key })).body.status === 'confirmed', 30_000, () => gw.logs());
    await waitFor(async () => receiver.events().some((e) => e.type === 'payment.confirmed' && e.data.id === created.body.id), 20_000);

    const apiText = await (await scrape(`${gw.apiUrl}/metrics`, `Bearer ${metricsToken}`)).text();
    expect(apiText).to.not.include(created.body.id); // no ids or addresses as label values
    expect(apiText).to.not.include(created.body.address);
    const api = parseMetrics(apiText);
    expect(sampleSum(api, 'payflow_http_request_duration_seconds_count', { service: 'api', method: 'GET', route: '/api/v1/payments/:id', status: '200' })).to.be.at.least(1);
    expect(sampleSum(api, 'payflow_http_request_duration_seconds_count', { route: '/api/v1/payments', method: 'POST', status: '201' })).to.be.at.least(1);
    expect(sampleSum(api, 'payflow_payments_created_total', { service: 'api', chain_id: '31337', currency: 'ETH' })).to.equal(1);
    expect(sampleSum(api, 'payflow_queue_jobs', { queue: 'webhooks', state: 'completed' })).to.be.a('number');
    expect(sampleSum(api, 'payflow_outbox_backlog')).to.be.a('number');
    expect(sampleSum(api, 'payflow_webhook_handoff_backlog')).to.equal(0); // the workers took it
    // payment.created's delivery was handed to the workers over Redis after commit, not through the outbox.
    expect(sampleSum(api, 'payflow_webhook_first_attempts_total', { via: 'handoff' })).to.equal(1);
    expect(sampleSum(api, 'payflow_webhook_backlog')).to.be.a('number');

    // Workers split the work between them; sum what both counted.
    const workers = async () => {
      const all: Sample[] = [];
      for (const p of workerPorts) all.push(...parseMetrics(await (await scrape(`http://127.0.0.1:${p}/metrics`, `Bearer ${metricsToken}`)).text()));
      return all;
    };
    const c = { chain_id: '31337', service: 'worker' };
    await waitFor(async () => (sampleSum(await workers(), 'payflow_webhook_deliveries_total', { outcome: 'succeeded' }) ?? 0) >= 3, 15_000);
    const w = await workers();
    expect(sampleSum(w, 'payflow_webhook_first_attempts_total', { via: 'queue' })).to.equal(1); // one worker made it a job
    expect(sampleSum(w, 'payflow_payment_transitions_total', { ...c, status: 'confirming' })).to.equal(1);
    expect(sampleSum(w, 'payflow_payment_transitions_total', { ...c, status: 'confirmed' })).to.equal(1);
    expect(sampleSum(w, 'payflow_payment_events_total', { ...c, type: 'payment.confirmed' })).to.equal(1);
    expect(sampleSum(w, 'payflow_transfers_detected_total', c)).to.equal(1);
    expect(sampleSum(w, 'payflow_payment_confirmation_seconds_count', c)).to.equal(1);
    expect(sampleSum(w, 'payflow_webhook_attempt_duration_seconds_count', { outcome: 'succeeded' })).to.be.at.least(3);
    expect(sampleSum(w, 'payflow_rpc_requests_total', { ...c, method: 'eth_blockNumber', outcome: 'ok' })).to.be.at.least(1);
    expect(sampleSum(w, 'payflow_rpc_request_duration_seconds_count', c)).to.be.at.least(1);
    expect(sampleSum(w, 'payflow_outbox_relayed_total')).to.be.at.least(2); // a webhook job per later event
    expect(sampleSum(w, 'payflow_chain_head_lag_blocks', c)).to.be.at.least(0);
    expect(sampleSum(w, 'payflow_chain_scanned_block', c)).to.be.greaterThan(0);
    expect(sampleSum(w, 'payflow_chain_head_block', c)).to.be.greaterThan(0);
    expect(sampleSum(w, 'payflow_queue_jobs', { queue: 'chain', state: 'failed' })).to.be.a('number');
    // Settlement metrics exist for workers/settlement to feed.
    expect(apiText).to.include('# TYPE payflow_settlements_total counter');
    expect(apiText).to.include('# TYPE payflow_gas_tank_balance gauge');
  });

  it('a real Prometheus scrapes the API and both workers with the token; payflow_ series arrive from each worker', async () => {
    const apiHost = new URL(gw.apiUrl).host;
    prom = await startPrometheus([
      { name: 'payflow-web', targets: [apiHost], auth: { bearer: metricsToken } },
      { name: 'payflow-worker', targets: workerPorts.map((p) => `127.0.0.1:${p}`), auth: { basicPassword: metricsToken } },
    ]);
    const targets = await waitFor(async () => {
      const data = await prom.api<{ activeTargets: { labels: { job: string; instance: string }; health: string; lastError: string }[] }>('targets');
      return data.activeTargets.length === 3 && data.activeTargets.every((t) => t.health === 'up') && data.activeTargets;
    }, 60_000, () => `${prom.logs()}`);
    expect(targets.map((t) => t.labels.job).sort()).to.deep.equal(['payflow-web', 'payflow-worker', 'payflow-worker']);

    const perWorker = await waitFor(async () => {
      const r = await prom.query('count by (instance) ({job="payflow-worker", __name__=~"payflow_.+"})');
      return r.length === 2 && r;
    }, 30_000);
    expect(perWorker.map((r) => r.metric.instance).sort()).to.deep.equal(workerPorts.map((p) => `127.0.0.1:${p}`).sort());
    for (const r of perWorker) expect(Number(r.value[1])).to.be.greaterThan(20);
    const lag = await waitFor(async () => {
      const r = await prom.query('max by (chain_id) (payflow_chain_head_lag_blocks)');
      return r.length > 0 && r;
    }, 30_000);
    expect(lag[0].metric.chain_id).to.equal('31337');
    const web = await prom.query('payflow_payments_created_total{job="payflow-web"}');
    expect(web.map((r) => r.value[1])).to.deep.equal(['1']);
  });
  it('the Grafana dashboard only uses metrics PayFlow exports, in queries Prometheus accepts', async () => {
    const dashboard = JSON.parse(readFileSync('docs/grafana-dashboard.json', 'utf8')) as { panels: { title: string; targets: { expr: string }[] }[] };
    const exported = new Set<string>();
    for (const url of [`${gw.apiUrl}/metrics`, ...workerPorts.map((p) => `http://127.0.0.1:${p}/metrics`)]) {
      const text = await (await scrape(url, `Bearer ${metricsToken}`)).text();
      for (const m of text.matchAll(/^# TYPE (payflow_\w+)/gm)) exported.add(m[1]);
    }
    const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr));
    expect(exprs.length).to.be.greaterThan(15);
    for (const expr of exprs) {
      for (const m of expr.matchAll(/payflow_\w+/g)) {
        const base = m[0].replace(/_(bucket|count|sum)$/, '');
        expect(exported.has(base) || exported.has(m[0]), `${m[0]} in "${expr}"`).to.equal(true);
      }
      // Prometheus parses and evaluates it (Grafana's $__rate_interval stands for a range).
      await prom.query(expr.replaceAll('$__rate_interval', '1m'));
    }
  });
});
