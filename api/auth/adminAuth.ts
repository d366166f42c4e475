import type Koa from 'koa';
import { unauthorized } from '../../shared/errors.js';
import { sameSecret } from '../../shared/sameSecret.js';

/** Admin routes: `Authorization: Bearer <ADMIN_TOKEN>`, compared in constant time. */
export function adminAuth(adminToken: string): Koa.Middleware {
  return async (ctx, next) => {
    const match = /^Bearer (.+)$/.exec(ctx.get('authorization'));
    if (!match || !sameSecret(match[1], adminToken)) throw unauthorized('Admin token required');
    await next();
  };
}
