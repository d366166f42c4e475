import { expect } from 'chai';
import { PAYMENT_ID } from '../../api/checkout/loadCheckout.js';
import { newId, timeDigits } from '../../shared/ids.js';
import { idTime } from '../support/ids.js';

describe('ids', () => {
  it('are the prefix, 8 characters of the creation millisecond and 16 random ones', () => {
    const before = Date.now();
    const id = newId('pay');
    const after = Date.now();
    expect(id).to.match(/^pay_[0-9A-Za-z]{24}$/);
    expect(idTime(id)).to.be.within(before, after);
  });

  it('writes the millisecond most significant first, in the alphabet order, so later ids sort after earlier ones', () => {
    expect(timeDigits(0)).to.equal('00000000');
    expect(timeDigits(61)).to.equal('0000000z');
    expect(timeDigits(62)).to.equal('00000010');
    expect(timeDigits(62 ** 8 - 1)).to.equal('zzzzzzzz'); // the year 8888
    const times = [0, 1, 61, 62, 3843, 3844, Date.UTC(2026, 10, 27), Date.UTC(2026, 10, 27) + 1, Date.UTC(2100, 0, 1)];
    const digits = times.map(timeDigits);
    expect([...digits].sort()).to.deep.equal(digits); // JavaScript's sort is code-unit order, as Postgres's C collation
  });

  it('never repeat, and each random position takes every character', () => {
    const ids = Array.from({ length: 20_000 }, () => newId('evt'));
    expect(new Set(ids).size).to.equal(ids.length);
    for (let pos = 12; pos < 28; pos++) expect(new Set(ids.map((id) => id[pos])).size, `characters at position ${pos}`).to.equal(62);
  });

  it('checkout accepts payment ids of both shapes, 24 characters and the 22 of payments made before, and nothing else', () => {
    expect(PAYMENT_ID.test(newId('pay'))).to.equal(true);
    expect(PAYMENT_ID.test(`pay_${'A'.repeat(22)}`)).to.equal(true);
    for (const id of [`pay_${'A'.repeat(21)}`, `pay_${'A'.repeat(23)}`, `pay_${'A'.repeat(25)}`, `evt_${'A'.repeat(24)}`, `pay_${'A'.repeat(23)}-`]) {
      expect(PAYMENT_ID.test(id), id).to.equal(false);
    }
  });
});
