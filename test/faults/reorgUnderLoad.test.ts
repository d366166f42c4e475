import { expect } from 'chai';
import { chainClient } from '../support/chain.js';
import { call, startGateway, waitFor, type Gateway } from '../support/gateway.js';
import { startWebhookReceiver } from '../support/webhookReceiver.js';
import { assertRecovered, createPayments, FAULT_ENV, openShop, PAYMENT_WEI, sleep } from './faultKit.js';

describe('fault: a reorg during load', function () {
  this.timeout(600_000);
  let gw: Gateway | undefined;
  let receiver: Awaited<ReturnType<typeof startWebhookReceiver>> | undefined;
  after(async () => {
    await gw?.stop();
    await receiver?.close();
  });

  it('payments whose transfers the reorg removed go back, are paid again and confirm once; the others are untouched', async () => {
    receiver = await startWebhookReceiver();
    // Each gateway has its own dev chain, so snapshot/revert here cannot disturb another test.
    gw = await startGateway({ workers: 2, confirmations: 3, env: FAULT_ENV });
    const g = gw;
    const shop = await openShop(g, receiver.url);
    const chain = chainClient(g.stack.rpcUrl, g.stack.usdcAddress);
    const [before, reorged, after_] = [await createPayments(g, shop, 5), await createPayments(g, shop, 5), await createPayments(g, shop, 5)];

    // Background load on the API for the whole scenario: new payments and reads.
    let loading = true;
    let loadErrors = 0;
    const load = (async () => {
      while (loading) {
        const r = await call(g, 'POST', '/api/v1/payments', { auth: shop.apiKey, body: { amount: '0.001', currency: 'ETH' } });
        if (r.status !== 201) loadErrors++;
        else if ((await call(g, 'GET', `/api/v1/payments/${r.body.id}`, { auth: shop.apiKey })).status !== 200) loadErrors++;
      }
    })();

    try {
      for (const p of before) await chain.sendEth(1, p.address, PAYMENT_WEI);
      await chain.mine(3);

      // The reorged payments are paid in one block, seen (confirming), then that block is replaced by a longer
      // chain without their transactions.
      const snapshot = await chain.rpc<string>('evm_snapshot');
      await chain.rpc('evm_setAutomine', [false]);
      for (const [i, p] of reorged.entries()) await chain.accounts[2 + i].sendTransaction({ to: p.address, value: PAYMENT_WEI });
      await chain.mine();
      await chain.rpc('evm_setAutomine', [true]);
      await waitFor(async () => {
        const rows: { status: string }[] = await g.db('payments').whereIn('id', reorged.map((p) => p.id)).select('status');
        return rows.every((r) => r.status === 'confirming');
      }, 60_000, () => g.logs().slice(-3000));
      await chain.rpc('evm_revert', [snapshot]);
      await chain.mine(3);
      await waitFor(async () => {
        const [{ n }] = await g.db('events').whereIn('payment_id', reorged.map((p) => p.id)).where({ type: 'payment.reorged' }).count({ n: '*' });
        return Number(n) === reorged.length;
      }, 60_000, () => g.logs().slice(-3000));
      const statuses: { status: string }[] = await g.db('payments').whereIn('id', reorged.map((p) => p.id)).select('status');
      expect(statuses.map((s) => s.status), 'back to waiting once the transfers are gone').to.deep.equal(reorged.map(() => 'pending'));

      // The customers pay again (their wallets rebroadcast), and the rest of the shop goes on.
      for (const p of [...reorged, ...after_]) {
        await chain.sendEth(1, p.address, PAYMENT_WEI);
        await sleep(100);
      }
      let mining = true;
      const miner = (async () => {
        while (mining) {
          await chain.mine();
          await sleep(400);
        }
      })();
      try {
        await assertRecovered(g.db, {
          shop,
          paid: [...before, ...reorged, ...after_].map((p) => p.id),
          received: () => receiver!.received,
          reorgs: true,
          describe: () => g.logs().slice(-3000),
        });
      } finally {
        mining = false;
        await miner;
      }
    } finally {
      loading = false;
      await load;
    }
    expect(loadErrors, 'API errors under load during the reorg').to.equal(0);
    const confirmed: { payment_id: string; n: number }[] = await g.db('events')
      .whereIn('payment_id', [...before, ...reorged, ...after_].map((p) => p.id))
      .where({ type: 'payment.confirmed' })
      .groupBy('payment_id')
      .select('payment_id')
      .count({ n: '*' });
    expect(confirmed.length).to.equal(15);
    expect(confirmed.every((c) => Number(c.n) === 1), 'payment.confirmed once per payment').to.equal(true);
  });
});
