import { expect } from 'chai';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, chmodSync, rmSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Webhook } from 'standardwebhooks';
import { freePort } from '../../scripts/devstack/ports.js';
import { waitFor } from '../support/gateway.js';
import { startWebhookReceiver } from '../support/webhookReceiver.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * The newcomer's path, as a newcomer takes it: `npm start` with nothing configured brings up embedded Postgres,
 * redis-server, a dev chain with USDC, migrations, the API and a worker; prints what to use; a payment paid with
 * `npm run demo:pay` reaches `confirmed` and its webhook verifies; Ctrl-C stops everything; a restart keeps the
 * credentials and starts the database clean (the dev chain is new).
 */
describe('npm start: the local default stack', function () {
  this.timeout(240_000);
  let home: string;
  let ports: { api: number; chain: number; pg: number; redis: number };
  let child: ChildProcess | undefined;
  let output = '';

  const env = () => {
    const e: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      PAYFLOW_HOME: home,
      PORT: String(ports.api),
      DEV_CHAIN_PORT: String(ports.chain),
      LOCAL_PG_PORT: String(ports.pg),
      LOCAL_REDIS_PORT: String(ports.redis),
      LOG_PRETTY: 'false',
      LOG_LEVEL: 'warn',
    };
    return e;
  };
  const start = async () => {
    output = '';
    child = spawn(process.execPath, ['--import', 'tsx', 'scripts/start-local.ts'], { cwd: repoRoot, env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (c) => (output += c));
    child.stderr!.on('data', (c) => (output += c));
    await waitFor(async () => output.includes('Ctrl-C stops everything'), 120_000, () => output);
  };
  const stop = async () => {
    const c = child!;
    const exited = new Promise<number | null>((r) => c.once('exit', (code) => r(code)));
    c.kill('SIGINT'); // what Ctrl-C sends
    const code = await exited;
    child = undefined;
    return code;
  };
  const printed = (label: RegExp) => label.exec(output)?.[1];

  before(async () => {
    home = mkdtempSync(path.join(os.tmpdir(), 'payflow-home-'));
    chmodSync(home, 0o755); // embedded Postgres runs as user postgres and must enter it
    ports = { api: await freePort(), chain: await freePort(), pg: await freePort(), redis: await freePort() };
  });
  after(async () => {
    if (child) await stop();
    rmSync(home, { recursive: true, force: true });
  });

  it('starts everything, prints what to use, and a demo payment reaches confirmed with a verified webhook', async () => {
    await start();
    const apiKey = printed(/demo API key (sk_test_\S+)/);
    const adminToken = printed(/admin token\s+(\S+)/);
    expect(apiKey, output).to.be.a('string');
    expect(adminToken).to.be.a('string');
    expect(output).to.include(`http://localhost:${ports.api}/api/v1`);
    expect(output).to.include(`http://localhost:${ports.api}/admin/queues`);
    expect(output).to.match(/curl -s -X POST http:\/\/localhost:\d+\/api\/v1\/payments/);
    expect(output).to.include('USDC at 0x');

    const api = `http://127.0.0.1:${ports.api}`;
    const headers = { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' };
    const receiver = await startWebhookReceiver();
    try {
      const ep = await (await fetch(`${api}/api/v1/webhook-endpoints`, { method: 'POST', headers, body: JSON.stringify({ url: receiver.url }) })).json();
      const payment = await (await fetch(`${api}/api/v1/payments`, { method: 'POST', headers, body: JSON.stringify({ amount: '0.05', currency: 'USDC' }) })).json();
      expect(payment.status).to.equal('pending');
      const pay = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/demo-pay.ts', payment.id], { cwd: repoRoot, env: env(), encoding: 'utf8' });
      expect(pay.status, pay.stderr).to.equal(0);
      expect(pay.stdout).to.include('sent 0.05 USDC');
      const confirmed = await waitFor(async () => {
        const p = await (await fetch(`${api}/api/v1/payments/${payment.id}`, { headers })).json();
        return p.status === 'confirmed' && p;
      }, 60_000, () => output);
      expect(confirmed.amount_received).to.equal('0.05');
      const delivered = await waitFor(async () => receiver.received.find((r) => JSON.parse(r.body).type === 'payment.confirmed'), 30_000);
      const event = new Webhook(ep.secret).verify(delivered.body, delivered.headers as Record<string, string>) as { data: { id: string } };
      expect(event.data.id).to.equal(payment.id);
    } finally {
      await receiver.close();
    }
  });

  it('Ctrl-C stops every process and service', async () => {
    expect(await stop()).to.equal(0);
    for (const port of [ports.api, ports.chain, ports.pg, ports.redis]) {
      await waitFor(async () => {
        try {
          await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(500) });
          return false;
        } catch (err) {
          return /ECONNREFUSED|fetch failed/.test(String((err as Error).cause ?? err));
        }
      }, 20_000, () => `port ${port} still answers`);
    }
  });

  it('a restart keeps the credentials and starts the database clean for the new dev chain', async () => {
    const before = JSON.parse(readFileSync(path.join(home, 'local.json'), 'utf8'));
    await start();
    expect(output).to.include('database   reset');
    expect(printed(/demo API key (sk_test_\S+)/)).to.equal(before.demoApiKey);
    const res = await fetch(`http://127.0.0.1:${ports.api}/api/v1/payments`, { headers: { authorization: `Bearer ${before.demoApiKey}` } });
    expect(res.status).to.equal(200);
    expect((await res.json()).data).to.deep.equal([]);
    expect(await stop()).to.equal(0);
  });

  it('a bad setting stops a process with one line naming the variable', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'api/main.ts'], {
      cwd: repoRoot,
      env: { PATH: process.env.PATH, DATABASE_URL: 'postgres://x@127.0.0.1/db', REDIS_URL: 'redis://127.0.0.1:1', ADMIN_TOKEN: 'a'.repeat(20), JWT_SECRET: 'j'.repeat(40), WEBHOOK_SECRETS_KEY: 'w'.repeat(40), HD_MNEMONIC: 'test test test test test test test test test test test junk', CHAINS: '[{"chain_id":1,"rpc_url":"ftp://x"}]' },
      encoding: 'utf8',
    });
    expect(r.status).to.equal(78);
    expect(r.stderr.trim().split('\n')).to.have.length(1);
    expect(r.stderr).to.include('CHAINS[0].rpc_url');
  });
});
