import { expect } from 'chai';
import { HDNodeWallet, Mnemonic } from 'ethers';
import { bumpedFees, depositSweepFees, gasTankFees, nativeSweepValue } from '../../workers/settlement/fees.js';
import { parseXpub, xpubAddressAt, XpubError } from '../../shared/settlement/depositAddress.js';

describe('settlement.fees', () => {
  it('a deposit sweep pays exactly its cap per gas (tip = cap), so balance − 21000 × cap leaves 0 wei', () => {
    const fees = depositSweepFees(10n, 2n);
    expect(fees).to.deep.equal({ maxFeePerGas: 22n, maxPriorityFeePerGas: 22n });
    expect(nativeSweepValue(1_000_000n, 21_000n, fees)).to.equal(1_000_000n - 21_000n * 22n);
  });

  it('a balance that cannot pay its own fee is not swept', () => {
    expect(nativeSweepValue(21_000n * 22n, 21_000n, depositSweepFees(10n, 2n))).to.equal(null);
  });

  it('the gas tank keeps an ordinary tip', () => {
    expect(gasTankFees(10n, 2n)).to.deep.equal({ maxFeePerGas: 22n, maxPriorityFeePerGas: 2n });
  });

  it('a replacement raises both fees by more than the 10 % nodes require, or to the market when higher', () => {
    const bumped = bumpedFees({ maxFeePerGas: 800n, maxPriorityFeePerGas: 80n }, { maxFeePerGas: 100n, maxPriorityFeePerGas: 100n });
    expect(bumped).to.deep.equal({ maxFeePerGas: 901n, maxPriorityFeePerGas: 100n });
    expect(bumped.maxFeePerGas * 10n > 800n * 11n).to.equal(true);
  });
});

describe('settlement.depositAddress (non-custodial xpub)', () => {
  const mnemonic = Mnemonic.fromPhrase('abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about');
  const account = HDNodeWallet.fromMnemonic(mnemonic, "m/44'/60'/0'");

  it('derives the same receive addresses as the merchant wallet (m/44\'/60\'/0\'/0/i) from an account xpub', () => {
    const xpub = account.neuter().extendedKey;
    for (const i of [0, 1, 7]) {
      expect(xpubAddressAt(xpub, i)).to.equal(HDNodeWallet.fromMnemonic(mnemonic, `m/44'/60'/0'/0/${i}`).address);
    }
    const receiveLevel = account.deriveChild(0).neuter().extendedKey;
    expect(xpubAddressAt(receiveLevel, 3)).to.equal(HDNodeWallet.fromMnemonic(mnemonic, "m/44'/60'/0'/0/3").address);
  });

  it('refuses private keys and garbage', () => {
    expect(() => parseXpub(account.extendedKey)).to.throw(XpubError, /PRIVATE/);
    expect(() => parseXpub('xpub-nonsense')).to.throw(XpubError);
  });
});
