import { expect } from 'chai';
import type { ChildProcess } from 'node:child_process';
import { chainClient } from '../support/chain.js';
import { startGateway, type Gateway } from '../support/gateway.js';
import { startWebhookReceiver } from '../support/webhookReceiver.js';
import { assertRecovered, createPayments, FAULT_ENV, openShop, PAYMENT_WEI, sleep } from './faultKit.js';

const KILLS = 20;

describe('fault: a worker SIGKILLed at random moments under load', function () {
  this.timeout(600_000);
  let gw: Gateway | undefined;
  let receiver: Awaited<ReturnType<typeof startWebhookReceiver>> | undefined;
  after(async () => {
    await gw?.stop();
    await receiver?.close();
  });

  it(`${KILLS} kills, each followed by a restart: every paid payment confirms once, every event is delivered, nothing is lost`, async () => {
    receiver = await startWebhookReceiver();
    gw = await startGateway({ workers: 2, confirmations: 1, env: FAULT_ENV });
    const g = gw;
    const shop = await openShop(g, receiver.url);
    const chain = chainClient(g.stack.rpcUrl, g.stack.usdcAddress);
    const payments = await createPayments(g, shop, 30);

    // Load: payments are paid one by one while workers die and come back.
    const load = (async () => {
      for (const p of payments) {
        await chain.sendEth(1, p.address, PAYMENT_WEI);
        await sleep(150 + Math.random() * 400);
      }
    })();

    const isAlive = (w: ChildProcess) => w.exitCode === null && w.signalCode === null;
    let kills = 0;
    while (kills < KILLS) {
      await sleep(300 + Math.random() * 1500);
      const alive = g.workers.filter(isAlive);
      const victim = alive[Math.floor(Math.random() * alive.length)];
      const exited = new Promise((r) => victim.once('exit', r));
      victim.kill('SIGKILL');
      await exited;
      kills++;
      await g.startWorker();
    }
    await load;
    expect(g.workers.filter(isAlive).length, 'workers running after the kills').to.equal(2);

    await assertRecovered(g.db, { shop, paid: payments.map((p) => p.id), received: () => receiver!.received, describe: () => g.logs().slice(-4000) });
  });
});
