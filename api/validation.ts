import { z } from 'zod';
import { invalidRequest } from '../shared/errors.js';

/**
 * Validates input against a strict schema and turns the first problem into a 400 naming the parameter.
 * Unknown fields are rejected, not ignored: a typo in a field name must not silently change a payment.
 * Messages are ours (`describeIssue`), not zod's defaults, so they read the same across zod versions.
 */
export function validate<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input ?? {}, PARSE_OPTIONS);
  if (result.success) return result.data;
  const issue = innermost(result.error.issues[0]);
  if (issue.code === 'unrecognized_keys') {
    throw invalidRequest('parameter_unknown', `Unknown parameter: ${issue.keys.join(', ')}`, issue.keys[0]);
  }
  const param = issue.path.join('.') || undefined;
  const code = issue.message === MISSING ? 'parameter_missing' : 'parameter_invalid';
  throw invalidRequest(code, `${param ? `${param}: ` : ''}${issue.message}`, param);
}

const MISSING = 'Required';
// One options object for every parse: validate runs on every request with a body.
const PARSE_OPTIONS = { error: describeIssue };

/** A record's bad key comes wrapped (`invalid_key`); its own issue names the key and says what is wrong with it. */
function innermost(issue: z.core.$ZodIssue): z.core.$ZodIssue {
  if (issue.code === 'invalid_key' && issue.issues.length > 0) {
    const inner = issue.issues[0];
    return { ...inner, path: [...issue.path, ...inner.path] } as z.core.$ZodIssue;
  }
  return issue;
}

const typeOf = (value: unknown) => (value === null ? 'null' : Array.isArray(value) ? 'array' : Number.isNaN(value) ? 'NaN' : typeof value);
const unit = (origin: string) => (origin === 'string' ? ' character(s)' : origin === 'array' || origin === 'set' ? ' item(s)' : '');

/** Messages for zod's issues (a schema's own message, as in `refine(…, 'must be …')`, takes precedence). */
function describeIssue(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return MISSING;
      if (issue.expected === 'int') return 'Expected an integer';
      return `Expected ${issue.expected === 'record' ? 'object' : issue.expected}, received ${typeOf(issue.input)}`;
    case 'too_small': {
      const { origin, minimum, inclusive } = issue as z.core.$ZodRawIssue<z.core.$ZodIssueTooSmall>;
      return origin === 'number' || origin === 'int' || origin === 'bigint'
        ? `Must be ${inclusive ? 'at least' : 'greater than'} ${minimum}`
        : `Must have at least ${minimum}${unit(origin)}`;
    }
    case 'too_big': {
      const { origin, maximum, inclusive } = issue as z.core.$ZodRawIssue<z.core.$ZodIssueTooBig>;
      return origin === 'number' || origin === 'int' || origin === 'bigint'
        ? `Must be ${inclusive ? 'at most' : 'less than'} ${maximum}`
        : `Must have at most ${maximum}${unit(origin)}`;
    }
    case 'invalid_value':
      return `Must be one of: ${issue.values.map(String).join(', ')}`;
    case 'invalid_format':
      return issue.format === 'url' ? 'Must be a URL' : `Must be a valid ${issue.format}`;
    case 'invalid_union':
      return 'Must be a string, number, boolean or null';
    default:
      return undefined; // zod's own message
  }
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
