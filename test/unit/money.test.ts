import { expect } from 'chai';
import { formatAmount, parseAmount, MAX_UINT256 } from '../../shared/money.js';
import { AmountError } from '../../shared/errors.js';

describe('money.parseAmount / formatAmount', () => {
  it('parses decimal strings into exact base units', () => {
    expect(parseAmount('0.05', 18)).to.equal(50_000_000_000_000_000n);
    expect(parseAmount('1', 6)).to.equal(1_000_000n);
    expect(parseAmount('12.345678', 6)).to.equal(12_345_678n);
    expect(parseAmount('0.000000000000000001', 18)).to.equal(1n);
  });

  it('keeps precision a JS number would lose', () => {
    expect(parseAmount('9007199254740993', 0)).to.equal(9007199254740993n);
    expect(parseAmount('123456789.123456789123456789', 18)).to.equal(123456789123456789123456789n);
  });

  for (const [input, code] of [
    ['0', 'amount_not_positive'],
    ['0.000', 'amount_not_positive'],
    ['-1', 'amount_invalid'],
    ['abc', 'amount_invalid'],
    ['1e5', 'amount_invalid'],
    ['.5', 'amount_invalid'],
    ['1.', 'amount_invalid'],
    [' 1', 'amount_invalid'],
    ['0x10', 'amount_invalid'],
    ['1.0000001', 'amount_too_precise'],
    [(MAX_UINT256 + 1n).toString(), 'amount_too_large'],
  ] as const) {
    it(`rejects ${JSON.stringify(input)} with ${code}`, () => {
      expect(() => parseAmount(input, 6)).to.throw(AmountError).with.property('code', code);
    });
  }

  it('rejects non-strings (a JS number is never accepted as money)', () => {
    expect(() => parseAmount(0.05, 18)).to.throw(AmountError);
    expect(() => parseAmount(null, 18)).to.throw(AmountError);
  });

  it('formats base units as the shortest exact decimal', () => {
    expect(formatAmount(50_000_000_000_000_000n, 18)).to.equal('0.05');
    expect(formatAmount(1_000_000n, 6)).to.equal('1');
    expect(formatAmount(0n, 6)).to.equal('0');
    expect(formatAmount(1n, 18)).to.equal('0.000000000000000001');
    expect(formatAmount(-1_500_000n, 6)).to.equal('-1.5');
  });

  it('round-trips', () => {
    for (const s of ['0.05', '1', '1234.000001', '0.1', '99999999999999999999.5']) expect(formatAmount(parseAmount(s, 6), 6)).to.equal(s);
  });
});
