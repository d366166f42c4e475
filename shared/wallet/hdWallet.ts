import { createHash } from 'node:crypto';
import { HDNodeWallet, Mnemonic, type HDNodeVoidWallet } from 'ethers';
import { publicChildAddresses } from './publicDerivation.js';

/**
 * Deposit addresses come from one HD wallet: BIP-44 path m/44'/60'/0'/0/{index}, index taken from a Postgres
 * sequence so it is never reused. The account node (m/44'/60'/0'/0) is derived once per process; each address
 * then costs a single non-hardened child derivation.
 */
export const DEPOSIT_ACCOUNT_PATH = "m/44'/60'/0'/0";

export interface DepositWallet {
  /** Names the HD account without revealing it: a hash of its extended public key (16 hex characters). */
  fingerprint(): string;
  /** Checksummed address for an index. Pure CPU. */
  addressAt(index: number): string;
  /** Signing wallet for an index; only settlement needs it. */
  signerAt(index: number): HDNodeWallet;
}

export function createDepositWallet(mnemonic: string): DepositWallet {
  // Checked now (word list and checksum: cheap), so a wrong HD_MNEMONIC still stops the process at start-up.
  const phrase = Mnemonic.fromPhrase(mnemonic);
  // The account node is derived on first use: seed stretching and hardened derivation take ~70 ms of CPU, which an
  // API process would otherwise spend before it listens; its first payment pays it instead.
  let account: HDNodeWallet | undefined;
  let publicAccount: HDNodeVoidWallet | undefined;
  const accountNode = () => (account ??= HDNodeWallet.fromMnemonic(phrase, DEPOSIT_ACCOUNT_PATH));
  // Public derivation is enough for addresses and avoids touching private keys on the request path.
  const publicAccountNode = () => (publicAccount ??= accountNode().neuter());
  let childAddress: ((index: number) => string) | undefined;
  let fingerprint: string | undefined;
  return {
    fingerprint: () => (fingerprint ??= createHash('sha256').update(publicAccountNode().extendedKey).digest('hex').slice(0, 16)),
    addressAt: (index) => (childAddress ??= publicChildAddresses(publicAccountNode()))(index),
    signerAt: (index) => accountNode().deriveChild(index),
  };
}
