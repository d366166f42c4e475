import { expect } from 'chai';
import { nextCheckInMs } from '../../workers/wallet/addressPoolFiller.js';

describe('address pool filler: when to count the pool again', () => {
  it('counts a pool near its refill mark every second', () => {
    expect(nextCheckInMs(1000, 1000)).to.equal(1000);
    expect(nextCheckInMs(2000, 1000)).to.equal(1000); // 1,000 above the mark: 0.1 s at the assumed top rate
  });

  it('counts a full big pool only once it could have been drawn down to the mark', () => {
    // 125,000 above the mark at 10,000 takes/s
    expect(nextCheckInMs(250_000, 125_000)).to.equal(12_500);
  });

  it('waits at most 30 s, however big the pool', () => {
    expect(nextCheckInMs(10_000_000, 5_000_000)).to.equal(30_000);
  });
});
