import { expect } from 'chai';
import { createBatcher } from '../../shared/batching.js';

const tick = () => new Promise((resolve) => setImmediate(resolve));

/** A run that records each batch it gets and answers when told to. */
function recordingRun() {
  const batches: number[][] = [];
  const pending: (() => void)[] = [];
  const most = { inFlight: 0 };
  const run = (inputs: number[]) =>
    new Promise<number[]>((resolve, reject) => {
      batches.push(inputs);
      most.inFlight = Math.max(most.inFlight, pending.length + 1);
      pending.push(() => (inputs.includes(13) ? reject(new Error('unlucky 13')) : resolve(inputs.map((n) => n * 10))));
    });
  const finishAll = async () => {
    while (pending.length > 0) {
      pending.shift()!();
      await tick();
    }
  };
  return { run, batches, finishAll, most };
}

describe('batching: concurrent calls share a round trip', () => {
  it('a lone call goes out at once, alone', async () => {
    const r = recordingRun();
    const call = createBatcher(r.run, { maxInFlight: 2, maxBatch: 64 });
    const answer = call(1);
    await tick();
    expect(r.batches).to.deep.equal([[1]]);
    await r.finishAll();
    expect(await answer).to.equal(10);
  });

  it('calls made in the same turn go together; calls made while every slot is busy wait and then go together', async () => {
    const r = recordingRun();
    const call = createBatcher(r.run, { maxInFlight: 1, maxBatch: 64 });
    const first = [1, 2, 3].map(call);
    await tick();
    const second = [4, 5, 6, 7].map(call); // the one slot is busy with [1, 2, 3]
    await tick();
    expect(r.batches).to.deep.equal([[1, 2, 3]]);
    await r.finishAll();
    expect(r.batches).to.deep.equal([[1, 2, 3], [4, 5, 6, 7]]);
    expect(await Promise.all([...first, ...second])).to.deep.equal([10, 20, 30, 40, 50, 60, 70]);
  });

  it('never runs more than maxInFlight batches nor puts more than maxBatch in one', async () => {
    const r = recordingRun();
    const call = createBatcher(r.run, { maxInFlight: 2, maxBatch: 3 });
    const all = Array.from({ length: 10 }, (_, i) => call(i));
    await tick();
    expect(r.batches).to.deep.equal([[0, 1, 2], [3, 4, 5]]);
    await r.finishAll();
    expect(r.batches.slice(2)).to.deep.equal([[6, 7, 8], [9]]);
    expect(r.most.inFlight).to.equal(2);
    expect(await Promise.all(all)).to.deep.equal([0, 10, 20, 30, 40, 50, 60, 70, 80, 90]);
  });

  it('a batch that fails is run again one by one, so only the bad input fails', async () => {
    const r = recordingRun();
    const call = createBatcher(r.run, { maxInFlight: 1, maxBatch: 64 });
    const calls = [12, 13, 14].map((n) => call(n).then((v) => ({ ok: v }), (err: Error) => ({ err: err.message })));
    await tick();
    await r.finishAll();
    const results = await Promise.all(calls);
    expect(results).to.deep.equal([{ ok: 120 }, { err: 'unlucky 13' }, { ok: 140 }]);
    expect(r.batches).to.deep.equal([[12, 13, 14], [12], [13], [14]]);
  });
});
