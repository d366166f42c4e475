import { z, type ZodTypeAny } from 'zod';
import { invalidRequest } from '../shared/errors.js';

/**
 * Validates input against a strict schema and turns the first problem into a 400 naming the parameter.
 * Unknown fields are rejected, not ignored: a typo in a field name must not silently change a payment.
 */
export function validate<S extends ZodTypeAny>(schema: S, input: unknown): z.infer<S> {
  const result = schema.safeParse(input ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const param = issue.path.join('.') || (issue.code === 'unrecognized_keys' ? issue.keys[0] : undefined);
  const code = issue.code === 'unrecognized_keys' ? 'parameter_unknown' : issue.message === 'Required' ? 'parameter_missing' : 'parameter_invalid';
  const message =
    issue.code === 'unrecognized_keys' ? `Unknown parameter: ${issue.keys.join(', ')}` : `${param ? `${param}: ` : ''}${issue.message}`;
  throw invalidRequest(code, message, param);
}

/** Bounded metadata: at most 20 keys, keys ≤ 40 chars, string values ≤ 500 chars (as Stripe). */
export const metadataSchema = z
  .record(
    // Keys that mean something to JavaScript objects are refused: metadata must never touch a prototype.
    z.string().min(1).max(40).refine((k) => !['__proto__', 'constructor', 'prototype'].includes(k), { message: 'is a reserved key' }),
    z.union([z.string().max(500), z.number(), z.boolean(), z.null()]),
  )
  .refine((m) => Object.keys(m).length <= 20, { message: 'metadata may have at most 20 keys' });

/** A percentage with at most two decimals, 0–100, as a string ("0.5"): underpaid tolerances. */
export const percentSchema = z
  .string()
  .regex(/^\d{1,3}(\.\d{1,2})?$/, 'must be a percentage like "0.5"')
  .refine((p) => Number(p) <= 100, 'must be at most 100');
