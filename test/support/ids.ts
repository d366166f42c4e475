const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** The millisecond an id was made, read back from the 8 time characters after its prefix (shared/ids.ts). */
export const idTime = (id: string) => [...id.slice(id.indexOf('_') + 1, id.indexOf('_') + 9)].reduce((ms, c) => ms * 62 + ALPHABET.indexOf(c), 0);
