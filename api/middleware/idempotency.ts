import { createHash, createHmac } from 'node:crypto';
import { openAesGcm, sealAesGcm } from '../../shared/aesGcm.js';
import type Koa from 'koa';
import type { Db } from '../../shared/db.js';
import { ApiError, invalidRequest } from '../../shared/errors.js';
import { errorBody } from './errors.js';
import { jsonOf } from '../../shared/serializedJson.js';

const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;
/** An in-progress key whose request has not finished after this long is presumed dead (process crashed) and taken over. */
const LEASE_SECONDS = 60;
/** How long a concurrent duplicate waits for the first request's response before answering 409. */
const WAIT_FOR_FIRST_MS = 15_000;

/**
 * `Idempotency-Key` on POST: the first request with a key runs; its response is stored in Postgres and replayed
 * (same status, same body, header `Idempotent-Replayed: true`) to every later request with the same key and the
 * same method, path and body, for at least `retentionHours`. The same key with another request answers 422
 * `idempotency_key_reused`. Concurrent duplicates wait for the first one's response, so N racing retries create
 * one object.
 *
 * Stored: 2xx responses and 409s (a business outcome such as `order_id_exists`). Other errors (validation,
 * rate limit, 5xx) release the key, so the client can fix the request and retry with the same key.
 *
 * Mount after authentication: keys are scoped per merchant (`scopeOf`), so two merchants never collide.
 */
export function idempotency(db: Db, opts: { scopeOf: (ctx: Koa.Context) => string; retentionHours: number; secret: string }): Koa.Middleware {
  return async (ctx, next) => {
    if (ctx.method !== 'POST') return next();
    let key = ctx.get('idempotency-key');
    if (!key) return next();
    if (!KEY_PATTERN.test(key)) {
      throw invalidRequest('parameter_invalid', 'Idempotency-Key must be 1 to 255 printable ASCII characters', 'Idempotency-Key');
    }
    const scope = opts.scopeOf(ctx);
    const requestHash = hashRequest(ctx.method, ctx.path, ctx.request.body);
    const sealing = responseSealing(opts.secret, scope, key);
    key = sealing.storedKey;

    const started = Date.now();
    for (;;) {
      const claimed = await claimKey(db, scope, key, requestHash, opts.retentionHours);
      if (claimed === 'claimed') break;
      if (claimed.request_hash !== requestHash) {
        throw new ApiError(422, 'invalid_request_error', 'idempotency_key_reused',
          'This Idempotency-Key was already used with a different request; use a new key for a new request', 'Idempotency-Key');
      }
      if (claimed.status === 'completed') {
        ctx.status = claimed.response_status!;
        ctx.type = 'application/json';
        try {
          ctx.body = sealing.open(claimed.response_body!);
        } catch {
          // Sealed under another server secret (JWT_SECRET was rotated): never re-run, that could duplicate an object.
          throw new ApiError(409, 'conflict_error', 'idempotency_key_unreadable', 'The stored response for this Idempotency-Key can no longer be read; use a new key', 'Idempotency-Key');
        }
        ctx.set('Idempotent-Replayed', 'true');
        return;
      }
      if (Date.now() - started > WAIT_FOR_FIRST_MS) {
        throw new ApiError(409, 'conflict_error', 'idempotency_key_in_use', 'A request with this Idempotency-Key is still being processed; retry later', 'Idempotency-Key');
      }
      await new Promise((r) => setTimeout(r, 50));
    }

    let stored = false;
    try {
      try {
        await next();
      } catch (err) {
        if (!(err instanceof ApiError && err.status === 409)) throw err;
        ctx.status = err.status;
        ctx.body = errorBody(err);
      }
      const storable = (ctx.status < 300 || ctx.status === 409) && ctx.body !== undefined && typeof ctx.body === 'object' && !Buffer.isBuffer(ctx.body);
      if (storable) {
        const body = jsonOf(ctx.body as object);
        await db('idempotency_keys').where({ scope, key }).update({ status: 'completed', response_status: ctx.status, response_body: sealing.seal(body) });
        ctx.type = 'application/json';
        ctx.body = body;
        stored = true;
      }
    } finally {
      if (!stored) await db('idempotency_keys').where({ scope, key, status: 'in_progress' }).delete();
    }
  };
}

interface IdempotencyRow {
  request_hash: string;
  status: 'in_progress' | 'completed';
  response_status: number | null;
  response_body: string | null;
}

/**
 * Takes the key for this request (insert, or take over an expired row or a dead in-progress one), or returns the
 * row another request holds. The primary key makes the insert the arbiter between concurrent requests.
 */
async function claimKey(db: Db, scope: string, key: string, requestHash: string, retentionHours: number): Promise<'claimed' | IdempotencyRow> {
  const inserted = await db.raw(
    `INSERT INTO idempotency_keys (scope, key, request_hash) VALUES (?, ?, ?) ON CONFLICT (scope, key) DO NOTHING RETURNING key`,
    [scope, key, requestHash],
  );
  if (inserted.rows.length === 1) return 'claimed';
  const takenOver = await db.raw(
    `UPDATE idempotency_keys
        SET request_hash = ?, status = 'in_progress', response_status = NULL, response_body = NULL, created_at = now(), locked_at = now()
      WHERE scope = ? AND key = ?
        AND (created_at < now() - make_interval(hours => ?)
             OR (status = 'in_progress' AND locked_at < now() - make_interval(secs => ?)))
      RETURNING key`,
    [requestHash, scope, key, retentionHours, LEASE_SECONDS],
  );
  if (takenOver.rows.length === 1) return 'claimed';
  const row: IdempotencyRow | undefined = await db('idempotency_keys')
    .select('request_hash', 'status', 'response_status', 'response_body')
    .where({ scope, key })
    .first();
  // Deleted between our insert and select (the holder failed and released it): try again.
  return row ?? claimKey(db, scope, key, requestHash, retentionHours);
}

/**
 * Stored responses can hold secrets shown once (a new API key, a webhook signing secret), and API keys are never
 * kept in clear. So the table holds only a SHA-256 of the Idempotency-Key, and each response is sealed with
 * AES-256-GCM under HMAC(server secret, scope + key): reading one back needs the client's own Idempotency-Key and
 * the server's secret, neither of which is in the database.
 */
export function responseSealing(serverSecret: string, scope: string, idempotencyKey: string) {
  const aesKey = createHmac('sha256', serverSecret).update(`idempotency\0${scope}\0${idempotencyKey}`).digest();
  return {
    storedKey: createHash('sha256').update(idempotencyKey).digest('hex'),
    seal: (plain: string): string => sealAesGcm(aesKey, plain).toString('base64'),
    open: (stored: string): string => openAesGcm(aesKey, Buffer.from(stored, 'base64')),
  };
}

/** Method, path and body with object keys sorted: the same JSON written in another key order is the same request. */
export function hashRequest(method: string, path: string, body: unknown): string {
  return createHash('sha256').update(JSON.stringify([method, path, canonical(body ?? null)])).digest('hex');
}

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.keys(value).sort().map((k) => [k, canonical((value as Record<string, unknown>)[k])]));
  }
  return value;
}

/** Deletes idempotency keys past retention; run periodically by every API process (a DELETE is harmless twice). */
export async function deleteExpiredIdempotencyKeys(db: Db, retentionHours: number): Promise<number> {
  return db('idempotency_keys').whereRaw(`created_at < now() - make_interval(hours => ?)`, [retentionHours]).delete();
}
