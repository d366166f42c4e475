import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** Random base62 string; 22 chars carry ~131 bits, so ids (and the checkout URL built on them) are unguessable. */
export function randomBase62(length = 22): string {
  const bytes = randomBytes(length * 2);
  let out = '';
  for (let i = 0; out.length < length; i++) {
    const b = bytes[i % bytes.length];
    // rejection sampling keeps the distribution uniform (248 = 62 * 4)
    if (b < 248) out += ALPHABET[b % 62];
    if (i >= bytes.length - 1 && out.length < length) return out + randomBase62(length - out.length);
  }
  return out;
}

export type IdPrefix = 'pay' | 'mer' | 'evt' | 'we' | 'whd' | 'key' | 'swp' | 'led';
export const newId = (prefix: IdPrefix) => `${prefix}_${randomBase62()}`;
