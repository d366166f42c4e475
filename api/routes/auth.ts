import type Router from '@koa/router';
import { createRouter } from './router.js';
import jsonwebtoken from 'jsonwebtoken';
import { z } from 'zod';
import { unauthorized } from '../../shared/errors.js';
import type { ApiDeps } from '../deps.js';
import { validate } from '../validation.js';

const tokenBody = z.object({ api_key: z.string().min(1).max(200) }).strict();

/** POST /api/v1/auth/token: exchanges an API key for a short-lived JWT carrying the key's scopes. */
export function authRoutes(deps: ApiDeps): Router {
  const router = createRouter();
  router.post('/auth/token', async (ctx) => {
    const { api_key } = validate(tokenBody, ctx.request.body);
    const key = await deps.apiKeys!.findActive(api_key);
    if (!key) throw unauthorized('Invalid API key');
    const expiresIn = deps.config.jwtTtlSeconds;
    const token = jsonwebtoken.sign({ scopes: key.scopes, kid: key.keyId }, deps.jwtKey, { algorithm: 'HS256', subject: key.merchantId, expiresIn });
    ctx.status = 201;
    ctx.body = { object: 'token', token, token_type: 'Bearer', expires_in: expiresIn };
  });
  return router;
}
