import { expect } from 'chai';
import { z } from 'zod';
import type { ApiError } from '../../shared/errors.js';
import { metadataSchema, percentSchema, validate } from '../../api/validation.js';
import { listQuery } from '../../api/pagination.js';

// The shapes of the API's own bodies: strings with a custom type message, bounded numbers, enums, arrays, URLs.
const body = z
  .object({
    amount: z.string({ error: (issue) => (issue.code === 'invalid_type' && issue.input !== undefined ? 'must be a decimal string' : undefined) }).max(10),
    currency: z.string().min(1).max(16),
    expires_in: z.number().int().min(60).max(3600).optional(),
    chain_id: z.number().int().positive().optional(),
    metadata: metadataSchema.optional(),
    mode: z.enum(['live', 'test']).optional(),
    scopes: z.array(z.enum(['read', 'write'])).min(1).max(2).optional(),
    url: z.string().url().refine((u) => /^https?:\/\//.test(u), { message: 'must be an http(s) URL' }).optional(),
    tolerance: percentSchema.optional(),
  })
  .strict();

function rejection(schema: z.ZodType, input: unknown): { status: number; code: string; param?: string; message: string } {
  try {
    validate(schema, input);
  } catch (err) {
    const e = err as ApiError;
    return { status: e.status, code: e.code, param: e.param, message: e.message };
  }
  throw new Error(`accepted ${JSON.stringify(input)}`);
}

describe('validate: the first problem of a body as a 400 naming its parameter', () => {
  const ok = { amount: '1', currency: 'ETH' };

  it('passes valid input through, with defaults applied and unknown query parameters kept', () => {
    expect(validate(body, { ...ok, metadata: { cart: '42', n: 1, gift: false, note: null } })).to.deep.equal({ ...ok, metadata: { cart: '42', n: 1, gift: false, note: null } });
    expect(validate(listQuery, { limit: '5', other: 'x' })).to.deep.equal({ limit: 5, other: 'x' });
    expect(validate(listQuery, undefined)).to.deep.equal({ limit: 10 });
  });

  it('tells a missing parameter from a wrong one', () => {
    expect(rejection(body, { currency: 'ETH' })).to.deep.equal({ status: 400, code: 'parameter_missing', param: 'amount', message: 'amount: Required' });
    expect(rejection(body, { amount: 0.05, currency: 'ETH' })).to.deep.equal({ status: 400, code: 'parameter_invalid', param: 'amount', message: 'amount: must be a decimal string' });
    expect(rejection(body, null)).to.include({ code: 'parameter_missing', param: 'amount' });
  });

  it('names unknown parameters, all of them', () => {
    expect(rejection(body, { ...ok, surprise: 1, other: 2 })).to.deep.equal({ status: 400, code: 'parameter_unknown', param: 'surprise', message: 'Unknown parameter: surprise, other' });
  });

  it('says what bound a value broke, in words', () => {
    expect(rejection(body, { ...ok, amount: '12345678901' }).message).to.equal('amount: Must have at most 10 character(s)');
    expect(rejection(body, { ...ok, currency: '' }).message).to.equal('currency: Must have at least 1 character(s)');
    expect(rejection(body, { ...ok, expires_in: 5 }).message).to.equal('expires_in: Must be at least 60');
    expect(rejection(body, { ...ok, expires_in: 5000 }).message).to.equal('expires_in: Must be at most 3600');
    expect(rejection(body, { ...ok, expires_in: 61.5 }).message).to.equal('expires_in: Expected an integer');
    expect(rejection(body, { ...ok, chain_id: 0 }).message).to.equal('chain_id: Must be greater than 0');
    expect(rejection(body, { ...ok, expires_in: '60' }).message).to.equal('expires_in: Expected number, received string');
    expect(rejection(body, { ...ok, mode: 'prod' }).message).to.equal('mode: Must be one of: live, test');
    expect(rejection(body, { ...ok, scopes: [] }).message).to.equal('scopes: Must have at least 1 item(s)');
    expect(rejection(body, { ...ok, scopes: ['admin'] })).to.include({ param: 'scopes.0', message: 'scopes.0: Must be one of: read, write' });
    expect(rejection(body, { ...ok, url: 'nope' }).message).to.equal('url: Must be a URL');
    expect(rejection(body, { ...ok, url: 'ftp://example.com' }).message).to.equal('url: must be an http(s) URL');
    expect(rejection(body, { ...ok, tolerance: '101' }).message).to.equal('tolerance: must be at most 100');
    expect(rejection(listQuery, { limit: 'ten' }).message).to.equal('limit: Expected number, received NaN');
  });

  it('checks metadata key by key, naming the key', () => {
    expect(rejection(body, { ...ok, metadata: { constructor: 'x' } })).to.include({ code: 'parameter_invalid', param: 'metadata.constructor', message: 'metadata.constructor: is a reserved key' });
    expect(rejection(body, { ...ok, metadata: { ['k'.repeat(41)]: 1 } }).param).to.equal(`metadata.${'k'.repeat(41)}`);
    expect(rejection(body, { ...ok, metadata: { cart: { id: 1 } } }).message).to.equal('metadata.cart: Must be a string, number, boolean or null');
    expect(rejection(body, { ...ok, metadata: Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`k${i}`, i])) }).message).to.equal('metadata: metadata may have at most 20 keys');
    expect(rejection(body, { ...ok, metadata: 'cart' }).message).to.equal('metadata: Expected object, received string');
  });
});
