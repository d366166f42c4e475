import { randomFillSync } from 'node:crypto';

// In ASCII order, so ids made later sort after earlier ones under the C collation (and cluster under any).
const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** Random base62 string: 16 characters carry ~95 bits, 32 (API keys) ~190. */
export function randomBase62(length: number): string {
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

/** A millisecond since the epoch in 8 base62 characters, most significant first (enough until the year 8888). */
export function timeDigits(ms: number): string {
  let out = '';
  for (let i = 0; i < 8; i++) {
    out = ALPHABET[ms % 62] + out;
    ms = Math.floor(ms / 62);
  }
  return out;
}

let lastMs = -1;
let lastDigits = '';
function nowDigits(): string {
  const ms = Date.now();
  if (ms !== lastMs) {
    lastMs = ms;
    lastDigits = timeDigits(ms);
  }
  return lastDigits;
}

/**
 * `pay_` + 24 base62 characters: the creation millisecond (8), then 16 random (~95 bits, so ids, and the checkout
 * URL built on a payment's, stay unguessable). Time first puts each new row's index entries next to the newest
 * ones, at the right-hand edge of the index. With wholly random ids an insert went to a random page of indexes
 * that only grow (payments, events, deliveries), and its cost grew with them (README "Performance", twelfth
 * session). payflow_new_id() makes the same shape in SQL (migration 20261127000000).
 */
export type IdPrefix = 'pay' | 'mer' | 'evt' | 'we' | 'whd' | 'key' | 'swp' | 'led';
export const newId = (kind: IdPrefix) => `${kind}_${nowDigits()}${randomBase62(16)}`;
