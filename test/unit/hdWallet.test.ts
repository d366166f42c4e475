import { expect } from 'chai';
import { HDNodeWallet } from 'ethers';
import { createDepositWallet } from '../../shared/wallet/hdWallet.js';

const MNEMONIC = 'test test test test test test test test test test test junk';

describe('wallet.createDepositWallet', () => {
  const wallet = createDepositWallet(MNEMONIC);

  it("derives BIP-44 m/44'/60'/0'/0/i addresses (known vectors of the standard test mnemonic)", () => {
    expect(wallet.addressAt(0)).to.equal('0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266');
    expect(wallet.addressAt(1)).to.equal('0x70997970C51812dc3A010C7d01b50e0d17dc79C8');
  });

  it('gives a different address for every index, and the signer matches the address', () => {
    const seen = new Set(Array.from({ length: 50 }, (_, i) => wallet.addressAt(i)));
    expect(seen.size).to.equal(50);
    expect(wallet.signerAt(7).address).to.equal(wallet.addressAt(7));
    expect(wallet.signerAt(7).address).to.equal(HDNodeWallet.fromPhrase(MNEMONIC, undefined, "m/44'/60'/0'/0/7").address);
  });

  it("derives exactly what ethers derives, on indices across the range (the fast curve path in publicDerivation.ts)", () => {
    const account = HDNodeWallet.fromPhrase(MNEMONIC, undefined, "m/44'/60'/0'/0").neuter();
    const indices = [...Array.from({ length: 200 }, (_, i) => i), 1000, 65_535, 65_536, 1_000_003, 2 ** 31 - 1];
    for (const i of indices) expect(wallet.addressAt(i), `index ${i}`).to.equal(account.deriveChild(i).address);
    expect(() => wallet.addressAt(2 ** 31)).to.throw(RangeError); // hardened indices need the private key
    expect(() => wallet.addressAt(-1)).to.throw(RangeError);
  });

  it('rejects a mnemonic with a wrong checksum when created, before any address is asked for', () => {
    expect(() => createDepositWallet('abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon')).to.throw(/checksum|invalid/i);
  });
});
