import { HDNodeWallet, Mnemonic } from 'ethers';

/**
 * Deposit addresses come from one HD wallet: BIP-44 path m/44'/60'/0'/0/{index}, index taken from a Postgres
 * sequence so it is never reused. The account node (m/44'/60'/0'/0) is derived once per process; each address
 * then costs a single non-hardened child derivation.
 */
export const DEPOSIT_ACCOUNT_PATH = "m/44'/60'/0'/0";

export interface DepositWallet {
  /** Checksummed address for an index. Pure CPU. */
  addressAt(index: number): string;
  /** Signing wallet for an index; only settlement needs it. */
  signerAt(index: number): HDNodeWallet;
}

export function createDepositWallet(mnemonic: string): DepositWallet {
  const account = HDNodeWallet.fromMnemonic(Mnemonic.fromPhrase(mnemonic), DEPOSIT_ACCOUNT_PATH);
  // Public derivation is enough for addresses and avoids touching private keys on the request path.
  const publicAccount = account.neuter();
  return {
    addressAt: (index) => publicAccount.deriveChild(index).address,
    signerAt: (index) => account.deriveChild(index),
  };
}
