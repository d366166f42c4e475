import { randomFillSync } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** Random base62 string; 22 chars carry ~131 bits, so ids (and the checkout URL built on them) are unguessable. */
export function randomBase62(length = 22): string {
  let out = '';
  while (out.length < length) {
    const b = randomByte();
    // rejection sampling keeps the distribution uniform (248 = 62 * 4)
    if (b < 248) out += ALPHABET[b % 62];
  }
  return out;
}

// Random bytes are drawn from the CSPRNG 4 kB at a time: one call per id cost ~5 µs, three ids per payment.
const reserve = Buffer.alloc(4096);
let used = reserve.length;
function randomByte(): number {
  if (used === reserve.length) {
    randomFillSync(reserve);
    used = 0;
  }
  return reserve[used++];
}

export type IdPrefix = 'pay' | 'mer' | 'evt' | 'we' | 'whd' | 'key' | 'swp' | 'led';
export const newId = (prefix: IdPrefix) => `${prefix}_${randomBase62()}`;
