import { createSecretKey, type KeyObject } from 'node:crypto';
import type Koa from 'koa';
import jwt from 'koa-jwt';
import { ApiError, unauthorized } from '../../shared/errors.js';
import type { ApiKeyScope, AuthenticatedKey } from '../../shared/merchants/apiKeys.js';
import type { ApiKeyCache } from './apiKeyCache.js';

export interface MerchantPrincipal {
  merchantId: string;
  scopes: ApiKeyScope[];
  via: 'api_key' | 'jwt';
  /** The API key used, or the one that issued the JWT: rate limits are per key. */
  keyId: string;
}

/** A KeyObject, not a string: jsonwebtoken verifies ~60× faster with one (see ../shared/NOTES.md). */
export const jwtKey = (secret: string): KeyObject => createSecretKey(Buffer.from(secret, 'utf8'));

/**
 * Merchant authentication for /api/v1: `Authorization: Bearer sk_…` (API key) or `Bearer <JWT>` issued by
 * POST /api/v1/auth/token. Sets ctx.state.merchant; any failure is a 401 with the same message, so a caller
 * cannot tell a revoked key from an unknown one. A JWT stops working when the key that issued it is revoked.
 */
export function merchantAuth(keys: ApiKeyCache, jwtSecret: KeyObject): Koa.Middleware {
  const verifyJwt = jwt({ secret: jwtSecret as unknown as string, algorithms: ['HS256'], key: 'jwt' });
  return async (ctx, next) => {
    const match = /^Bearer (\S+)$/.exec(ctx.get('authorization'));
    if (!match) throw unauthorized('Missing Authorization: Bearer <api key or token>');
    const credential = match[1];
    if (credential.startsWith('sk_')) {
      // Set in app.ts when this process verified the same credential within the cache TTL.
      const key = (ctx.state.knownApiKey as AuthenticatedKey | undefined) ?? (await keys.findActive(credential));
      if (!key) throw unauthorized('Invalid API key');
      ctx.state.merchant = { merchantId: key.merchantId, scopes: key.scopes, via: 'api_key', keyId: key.keyId } satisfies MerchantPrincipal;
      return next();
    }
    try {
      await verifyJwt(ctx as never, async () => {});
    } catch {
      throw unauthorized('Invalid or expired token');
    }
    const claims = ctx.state.jwt as { sub?: string; scopes?: ApiKeyScope[]; kid?: string };
    if (typeof claims?.sub !== 'string' || typeof claims.kid !== 'string' || !(await keys.isActive(claims.kid))) {
      throw unauthorized('Invalid or expired token');
    }
    const scopes = Array.isArray(claims.scopes) ? claims.scopes.filter((s): s is ApiKeyScope => s === 'read' || s === 'write') : ['read' as const];
    ctx.state.merchant = { merchantId: claims.sub, scopes, via: 'jwt', keyId: claims.kid } satisfies MerchantPrincipal;
    return next();
  };
}

/** The authenticated merchant's id (routes behind merchantAuth). */
export const merchantIdOf = (ctx: { state: Record<string, unknown> }): string => (ctx.state.merchant as MerchantPrincipal).merchantId;

/** Writes need the `write` scope (read-only keys answer 403). */
export function requireScope(scope: ApiKeyScope): Koa.Middleware {
  return async (ctx, next) => {
    const merchant = ctx.state.merchant as MerchantPrincipal;
    if (!merchant.scopes.includes(scope)) {
      throw new ApiError(403, 'permission_error', 'insufficient_scope', `This key lacks the ${scope} scope`);
    }
    await next();
  };
}
