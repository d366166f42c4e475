import { createHmac } from 'node:crypto';
import { secp256k1 } from '@noble/curves/secp256k1';
import { keccak_256 } from '@noble/hashes/sha3';
import { getAddress, getBytes, type HDNodeVoidWallet } from 'ethers';

type Point = InstanceType<typeof secp256k1.ProjectivePoint>;

/**
 * BIP-32 public (non-hardened) child derivation straight on the curve, for deposit addresses:
 * child = parent + G·IL with IL from HMAC-SHA512(chain code, parent key ‖ index), address = the last 20 bytes of
 * keccak256 of the uncompressed child key. It is what ethers' HDNodeVoidWallet.deriveChild(i).address computes
 * (test/unit/hdWallet.test.ts compares them), without the hex round trips and the two point decompressions ethers
 * makes per child: about 5× less CPU per address, which decides how fast the workers fill the address pool.
 */
export function publicChildAddresses(parent: HDNodeVoidWallet): (index: number) => string {
  const chainCode = Buffer.from(getBytes(parent.chainCode));
  const parentKey = Buffer.from(getBytes(parent.publicKey)); // compressed, 33 bytes
  const parentPoint: Point = secp256k1.ProjectivePoint.fromHex(parentKey);
  const data = Buffer.alloc(37);
  parentKey.copy(data, 0);
  return (index) => {
    if (!Number.isInteger(index) || index < 0 || index >= 0x80000000) throw new RangeError(`deposit address index out of range: ${index}`);
    data.writeUInt32BE(index, 33);
    const I = createHmac('sha512', chainCode).update(data).digest();
    const il = BigInt(`0x${I.subarray(0, 32).toString('hex')}`);
    // Either case has a probability below 2^-127; BIP-32 says such an index has no key, and no real index hits it.
    if (il === 0n || il >= secp256k1.CURVE.n) throw new Error(`BIP-32: index ${index} has no key`);
    const child = secp256k1.ProjectivePoint.BASE.multiply(il).add(parentPoint);
    const uncompressed = child.toRawBytes(false);
    return getAddress(`0x${Buffer.from(keccak_256(uncompressed.subarray(1))).subarray(12).toString('hex')}`);
  };
}
