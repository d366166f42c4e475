import { expect } from 'chai';
import { HDNodeWallet, Mnemonic } from 'ethers';
import { call, createTestMerchant, startGateway, stopChild, waitFor, type Gateway } from '../support/gateway.js';
import { startWebhookReceiver } from '../support/webhookReceiver.js';
import type { Tx } from '../../shared/db.js';
import { reevaluatePayment } from '../../shared/payments/reevaluatePayment.js';
import { timeDigits } from '../../shared/ids.js';
import { idTime } from '../support/ids.js';
import { findOrphans } from '../support/orphans.js';

const account = HDNodeWallet.fromMnemonic(
  Mnemonic.fromPhrase('abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about'),
  "m/44'/60'/0'/0",
);

/**
 * Creating a payment in one statement (createPayment.ts): addresses from the pool the workers derive ahead,
 * merchant settings from a cache that can never be stale in effect, and the same payment object in the answer,
 * in GET and in the payment.created webhook.
 */
describe('payment creation: address pool, one statement, cached merchant settings', function () {
  this.timeout(120_000);
  let gw: Gateway;
  let merchant: { id: string; api_key: string };
  let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;

  before(async () => {
    gw = await startGateway({ env: { DEPOSIT_ADDRESS_POOL_SIZE: '40', RATE_LIMIT_WRITE: '100000' } });
    merchant = await createTestMerchant(gw);
    receiver = await startWebhookReceiver();
    expect((await call(gw, 'POST', '/api/v1/webhook-endpoints', { auth: merchant.api_key, body: { url: receiver.url } })).status).to.equal(201);
    // Only other types: this endpoint must get no delivery for payment.created.
    expect((await call(gw, 'POST', '/api/v1/webhook-endpoints', { auth: merchant.api_key, body: { url: `${receiver.url}/other`, events: ['payment.confirmed'] } })).status).to.equal(201);
  });
  after(async () => {
    await receiver?.close();
    await gw?.stop();
  });

  const create = (body: Record<string, unknown>, auth = merchant.api_key) => call(gw, 'POST', '/api/v1/payments', { auth, body });

  it('workers keep the pool stocked with addresses of the configured HD account', async () => {
    await waitFor(async () => Number((await gw.db('deposit_address_pool').count('* as n').first())!.n) >= 40, 30_000, () => gw.logs());
    const rows = await gw.db('deposit_address_pool').orderBy('address_index');
    for (const r of rows) expect(r.address).to.equal(account.deriveChild(Number(r.address_index)).address);
  });

  it('takes a pooled address, and answers with exactly what GET and the payment.created webhook show', async () => {
    const pooled = new Set((await gw.db('deposit_address_pool').select('address')).map((r) => r.address));
    const res = await create({ amount: '0.25', currency: 'ETH', order_id: 'fast-1', metadata: { cart: 'c-1', n: 3 }, expires_in: 600 });
    expect(res.status, JSON.stringify(res.body)).to.equal(201);
    expect(pooled.has(res.body.address), 'the address came from the pool').to.equal(true);
    const row = await gw.db('payments').where({ id: res.body.id }).first();
    expect(row.address).to.equal(account.deriveChild(Number(row.address_index)).address);
    expect(await gw.db('deposit_address_pool').where({ address: res.body.address }).first()).to.equal(undefined);
    expect(Date.parse(res.body.expires_at) - Date.parse(res.body.created_at)).to.equal(600_000);

    const { transfers, ...got } = (await call(gw, 'GET', `/api/v1/payments/${res.body.id}`, { auth: merchant.api_key })).body;
    expect(transfers).to.deep.equal([]);
    expect(got).to.deep.equal(res.body);

    const hook = await waitFor(async () => receiver.received.find((w) => w.body.includes(res.body.id)), 20_000, () => gw.logs());
    const event = JSON.parse(hook.body);
    expect(event.type).to.equal('payment.created');
    expect(event.data).to.deep.equal(res.body);
    const deliveries = await gw.db('webhook_deliveries').select('webhook_deliveries.id').join('events', 'events.id', 'webhook_deliveries.event_id').where('events.payment_id', res.body.id);
    expect(deliveries).to.have.length(1); // not to the endpoint subscribed to payment.confirmed only
    expect(deliveries[0].id).to.match(/^whd_[0-9A-Za-z]{24}$/);
  });

  it('ids made in SQL (payflow_new_id) look like ids made in JavaScript: the time, then random characters that never repeat and use every character everywhere', async () => {
    const { rows } = await gw.db.raw(`SELECT payflow_new_id('whd') AS id, floor(date_part('epoch', now()) * 1000) AS now FROM generate_series(1, 20000)`);
    const ids = (rows as { id: string }[]).map((r) => r.id);
    for (const id of ids) expect(id).to.match(/^whd_[0-9A-Za-z]{24}$/);
    // The statement's time (now()), read back exactly from the 8 time characters, and the same as JavaScript writes it.
    expect(new Set(ids.map(idTime))).to.deep.equal(new Set([Number(rows[0].now)]));
    expect(ids[0].slice(4, 12)).to.equal(timeDigits(Number(rows[0].now)));
    expect(new Set(ids).size).to.equal(ids.length);
    // No random position is fixed or narrowed (as raw UUID bytes would make the version's): each shows 60+ of the 62.
    for (let pos = 12; pos < 28; pos++) expect(new Set(ids.map((id) => id[pos])).size, `characters at position ${pos}`).to.be.at.least(60);
  });

  it('ids of later payments sort after earlier ones, so each new row lands at the right-hand edge of its indexes', async () => {
    const first = await create({ amount: '1', currency: 'ETH' });
    await new Promise((resolve) => setTimeout(resolve, 5));
    const second = await create({ amount: '1', currency: 'ETH' });
    expect(idTime(first.body.id)).to.be.below(idTime(second.body.id));
    const { rows } = await gw.db.raw(`SELECT id FROM payments WHERE id IN (?, ?) ORDER BY id COLLATE "C"`, [second.body.id, first.body.id]);
    expect(rows.map((r: { id: string }) => r.id)).to.deep.equal([first.body.id, second.body.id]);
    expect(Math.abs(idTime(second.body.id) - Date.parse(second.body.created_at))).to.be.below(1000);
  });

  it('a duplicate order_id is still a 409 naming the first payment, and writes nothing', async () => {
    const first = await create({ amount: '1', currency: 'ETH', order_id: 'dup-1' });
    const before = Number((await gw.db('events').count('* as n').first())!.n);
    const again = await create({ amount: '1', currency: 'ETH', order_id: 'dup-1' });
    expect(again.status).to.equal(409);
    expect(again.body.error).to.include({ code: 'order_id_exists' });
    expect(again.body.error.payment_id).to.equal(first.body.id);
    expect(Number((await gw.db('events').count('* as n').first())!.n)).to.equal(before);
  });

  it('a merchant that is gone (its key still cached) gets a 401 and no rows: no foreign key is needed to refuse it', async () => {
    const gone = await createTestMerchant(gw, 'Gone Shop');
    expect((await create({ amount: '1', currency: 'ETH' }, gone.api_key)).status).to.equal(201); // its key and settings are cached now
    await gw.db.transaction(async (trx) => {
      const payments = trx('payments').where({ merchant_id: gone.id }).select('id');
      await trx('webhook_deliveries').whereIn('event_id', trx('events').whereIn('payment_id', payments).select('id')).delete();
      await trx('events').where({ merchant_id: gone.id }).delete();
      await trx('payments').where({ merchant_id: gone.id }).delete();
      await trx('api_keys').where({ merchant_id: gone.id }).delete();
      await trx('merchants').where({ id: gone.id }).delete();
    });
    const res = await create({ amount: '1', currency: 'ETH' }, gone.api_key);
    expect(res.status, JSON.stringify(res.body)).to.equal(401);
    expect(res.body.error).to.include({ type: 'authentication_error' });
    expect(await findOrphans(gw.db)).to.deep.equal({});
    expect(await gw.db('payments').where({ merchant_id: gone.id }).count({ n: '*' })).to.deep.equal([{ n: 0 }]);
  });

  it('a settings change made elsewhere (another API process, or by hand) applies to the very next payment', async () => {
    await create({ amount: '1', currency: 'ETH' }); // the settings are cached now
    await gw.db('merchants').where({ id: merchant.id }).update({ underpaid_tolerance_percent: '2.5' });
    const tolerant = await create({ amount: '10', currency: 'ETH' });
    expect(tolerant.body.underpaid_tolerance).to.equal('0.25');

    // Non-custodial from now on: the next address comes from the merchant's xpub, not from the pool.
    const merchantWallet = HDNodeWallet.fromMnemonic(Mnemonic.fromPhrase('test test test test test test test test test test test junk'), "m/44'/60'/0'");
    await gw.db('merchants').where({ id: merchant.id }).update({ xpub: merchantWallet.neuter().extendedKey });
    const own = await create({ amount: '1', currency: 'ETH' });
    expect(own.status, JSON.stringify(own.body)).to.equal(201);
    expect(own.body.custody).to.equal('non_custodial');
    expect(own.body.address).to.equal(merchantWallet.deriveChild(0).deriveChild(0).address);
    await gw.db('merchants').where({ id: merchant.id }).update({ xpub: null, underpaid_tolerance_percent: 0 });
  });

  it('payments created at the same moment each stand alone: repeats of an order_id fail alone, the rest commit once', async () => {
    // 40 at once into one API process: its batches mix fresh payments with repeated order_ids. A repeat is not
    // inserted (it alone), goes the general way and answers 409 naming the one that was; the rest commit.
    const bodies = Array.from({ length: 40 }, (_, i) => ({ amount: '0.01', currency: 'ETH', metadata: { n: i }, ...(i < 20 ? { order_id: `burst-${i % 10}` } : {}) }));
    const results = await Promise.all(bodies.map((body) => create(body)));
    const byOrder = new Map<string, typeof results>();
    results.forEach((r, i) => {
      const order = bodies[i].order_id;
      if (order) byOrder.set(order, [...(byOrder.get(order) ?? []), r]);
      else expect(r.status, JSON.stringify(r.body)).to.equal(201);
    });
    for (const [order, answers] of byOrder) {
      const won = answers.filter((r) => r.status === 201);
      expect(won, order).to.have.length(1);
      const lost = answers.find((r) => r.status !== 201)!;
      expect(lost.status).to.equal(409);
      expect(lost.body.error.payment_id).to.equal(won[0].body.id);
    }
    const created = results.filter((r) => r.status === 201).map((r) => r.body.id as string);
    expect(created).to.have.length(30);
    // Each created payment has exactly its own event, delivery and job; the repeats wrote nothing.
    const events = await gw.db('events').whereIn('payment_id', created).select('id', 'payment_id', 'data');
    expect(events.map((e) => e.payment_id).sort()).to.deep.equal([...created].sort());
    for (const e of events) expect(e.data.id).to.equal(e.payment_id);
    // Each row's JSON values (metadata, the event's data) went to that row, not a neighbour in the batch.
    const stored = await gw.db('payments').whereIn('id', created).select('id', 'metadata');
    const sent = new Map(results.filter((r) => r.status === 201).map((r) => [r.body.id as string, r.body.metadata]));
    for (const row of stored) expect(row.metadata, row.id).to.deep.equal(sent.get(row.id));
    for (const e of events) expect(e.data.metadata).to.deep.equal(sent.get(e.payment_id));
    expect(new Set(stored.map((r) => r.metadata.n)).size).to.equal(30);
    const deliveries = await gw.db('webhook_deliveries').whereIn('event_id', events.map((e) => e.id));
    expect(deliveries).to.have.length(30);
    expect(Number((await gw.db('payments').where('order_id', 'like', 'burst-%').count('* as n').first())!.n)).to.equal(10);
    await waitFor(async () => created.every((id) => receiver.received.some((w) => w.body.includes(id))), 30_000, () => gw.logs());
  });

  it('concurrent reads (batched together) show each merchant only its own payments', async () => {
    const other = await createTestMerchant(gw, 'Other Shop');
    const mine = await Promise.all(Array.from({ length: 20 }, () => create({ amount: '0.02', currency: 'ETH' })));
    const theirs = await Promise.all(Array.from({ length: 20 }, () => create({ amount: '0.03', currency: 'ETH' }, other.api_key)));
    // Interleaved: the owner's read and the other merchant's read of the same id travel in the same batch.
    const reads = await Promise.all(
      mine.flatMap((m, i) => [
        call(gw, 'GET', `/api/v1/payments/${m.body.id}`, { auth: merchant.api_key }),
        call(gw, 'GET', `/api/v1/payments/${m.body.id}`, { auth: other.api_key }),
        call(gw, 'GET', `/api/v1/payments/${theirs[i].body.id}`, { auth: other.api_key }),
        call(gw, 'GET', `/api/v1/payments/pay_${'x'.repeat(22)}`, { auth: merchant.api_key }),
      ]),
    );
    mine.forEach((m, i) => {
      const [own, foreign, theirsRead, missing] = reads.slice(i * 4, i * 4 + 4);
      expect(own.status).to.equal(200);
      expect(own.body.id).to.equal(m.body.id);
      expect(own.body.amount).to.equal('0.02');
      expect(foreign.status).to.equal(404);
      expect(theirsRead.body.id).to.equal(theirs[i].body.id);
      expect(theirsRead.body.amount).to.equal('0.03');
      expect(missing.status).to.equal(404);
    });
  });

  it('several API processes creating at once never share an address, pooled or derived in place', async () => {
    const second = await gw.startApi();
    try {
      const other = { apiUrl: `http://127.0.0.1:${second.port}` };
      const results = await Promise.all(
        Array.from({ length: 120 }, (_, i) => call(i % 2 ? gw : other, 'POST', '/api/v1/payments', { auth: merchant.api_key, body: { amount: '0.01', currency: 'ETH' } })),
      );
      expect(results.map((r) => r.status)).to.deep.equal(results.map(() => 201));
      const rows = await gw.db('payments').whereIn('id', results.map((r) => r.body.id));
      expect(new Set(rows.map((r) => r.address)).size).to.equal(120);
      for (const r of rows) expect(r.address).to.equal(account.deriveChild(Number(r.address_index)).address);
    } finally {
      await stopChild(second.child);
    }
  });

  it('a payment locked for a transition still takes rows that refer to it; a second transition waits', async () => {
    const res = await create({ amount: '0.01', currency: 'ETH' });
    expect(res.status).to.equal(201);
    const chain = { scannedTip: 0, tipTimestamp: null };
    const lockTimeout = (trx: Tx, ms: number) => trx.raw(`SET LOCAL lock_timeout = '${ms}ms'`);
    await gw.db.transaction(async (holder) => {
      // Locks the payment as every transition does (the scanner's re-evaluation here), and keeps it locked.
      expect(await reevaluatePayment(holder, res.body.id, chain)).to.deep.equal([]);
      // Another transaction writing a row that refers to the payment (the scanner recording a transfer: its
      // foreign-key check takes FOR KEY SHARE) does not wait for the transition: the lock is FOR NO KEY UPDATE, not
      // FOR UPDATE.
      const other = await gw.db.transaction();
      try {
        await lockTimeout(other, 2000);
        await other('transfers').insert({
          chain_id: res.body.chain_id, tx_hash: `0x${'ab'.repeat(32)}`, log_index: -1, block_number: 1, block_hash: `0x${'cd'.repeat(32)}`,
          from_address: `0x${'11'.repeat(20)}`, to_address: res.body.address, amount: '1', block_timestamp: new Date(), counted: true, payment_id: res.body.id,
        });
      } finally {
        await other.rollback();
      }
      // A second transition of the same payment does wait.
      const second = gw.db.transaction(async (trx) => {
        await lockTimeout(trx, 300);
        await reevaluatePayment(trx, res.body.id, chain);
      });
      await second.then(
        () => expect.fail('a second transition did not wait for the first'),
        (err) => expect(err.code).to.equal('55P03'), // lock_not_available
      );
    });
  });
});

