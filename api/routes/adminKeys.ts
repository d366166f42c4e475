import type Router from '@koa/router';
import { z } from 'zod';
import type { Db, Tx } from '../../shared/db.js';
import { ApiError, notFound } from '../../shared/errors.js';
import { insertApiKey, type ApiKeyScope } from '../../shared/merchants/apiKeys.js';
import type { ApiDeps } from '../deps.js';
import { paginate } from '../pagination.js';
import { validate } from '../validation.js';

interface ApiKeyRow {
  seq: number;
  id: string;
  merchant_id: string;
  key_prefix: string;
  scopes: ApiKeyScope[];
  created_at: Date;
  revoked_at: Date | null;
}

const scopes = z.array(z.enum(['read', 'write'])).min(1).max(2);
const createKeyBody = z.object({ scopes: scopes.optional(), mode: z.enum(['live', 'test']).optional() }).strict();
const emptyBody = z.object({}).strict();

const presentKey = (r: ApiKeyRow) => ({
  id: r.id,
  object: 'api_key' as const,
  merchant_id: r.merchant_id,
  key_prefix: r.key_prefix,
  mode: r.key_prefix.startsWith('sk_live_') ? ('live' as const) : ('test' as const),
  scopes: r.scopes,
  created_at: r.created_at.toISOString(),
  revoked_at: r.revoked_at ? r.revoked_at.toISOString() : null,
});

/**
 * /admin/v1/merchants/:id/keys: an operator creates keys with scopes (`read`, `write`), lists them, rotates one
 * (a new key with the same scopes; the old one is revoked in the same transaction) and revokes one. A key is shown
 * once, at creation; only its SHA-256 is stored. Revocation reaches every API process within API_KEY_CACHE_TTL_MS.
 */
export function mountApiKeyAdminRoutes(router: Router, deps: ApiDeps): void {
  const merchantExists = async (db: Db | Tx, id: string) => {
    if (!(await db('merchants').select('id').where({ id }).first())) throw notFound('merchant');
  };

  router.post('/merchants/:id/keys', async (ctx) => {
    const body = validate(createKeyBody, ctx.request.body);
    await merchantExists(deps.db, ctx.params.id);
    const mode = body.mode ?? (deps.config.env === 'production' ? 'live' : 'test');
    const { id, key } = await insertApiKey(deps.db, ctx.params.id, { mode, scopes: body.scopes ? [...new Set(body.scopes)] : undefined });
    const row: ApiKeyRow = await deps.db('api_keys').where({ id }).first();
    ctx.status = 201;
    ctx.body = { ...presentKey(row), key };
  });

  router.get('/merchants/:id/keys', async (ctx) => {
    await merchantExists(deps.db, ctx.params.id);
    const scope = { merchant_id: ctx.params.id };
    const { rows, hasMore } = await paginate<ApiKeyRow>(deps.db('api_keys').where(scope), 'api_keys', scope, ctx.query);
    ctx.body = { object: 'list', data: rows.map(presentKey), has_more: hasMore };
  });

  router.post('/merchants/:id/keys/:keyId/rotate', async (ctx) => {
    validate(emptyBody, ctx.request.body);
    const rotated = await deps.db.transaction(async (trx) => {
      const old: ApiKeyRow | undefined = await trx('api_keys').where({ id: ctx.params.keyId, merchant_id: ctx.params.id }).forUpdate().first();
      if (!old) throw notFound('API key');
      if (old.revoked_at) throw new ApiError(409, 'conflict_error', 'api_key_revoked', 'This key is revoked; create a new one instead');
      await trx('api_keys').where({ id: old.id }).update({ revoked_at: trx.fn.now() });
      const mode = old.key_prefix.startsWith('sk_live_') ? 'live' : 'test';
      const { id, key } = await insertApiKey(trx, old.merchant_id, { mode, scopes: old.scopes });
      const row: ApiKeyRow = await trx('api_keys').where({ id }).first();
      return { ...presentKey(row), key, replaces: old.id };
    });
    deps.apiKeys?.forget(ctx.params.keyId);
    ctx.status = 201;
    ctx.body = rotated;
  });

  router.delete('/merchants/:id/keys/:keyId', async (ctx) => {
    const [row]: ApiKeyRow[] = await deps.db('api_keys')
      .where({ id: ctx.params.keyId, merchant_id: ctx.params.id })
      .update({ revoked_at: deps.db.raw('coalesce(revoked_at, now())') })
      .returning('*');
    if (!row) throw notFound('API key');
    deps.apiKeys?.forget(row.id);
    ctx.body = presentKey(row);
  });
}
