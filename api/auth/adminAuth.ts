import { timingSafeEqual, createHash } from 'node:crypto';
import type Koa from 'koa';
import { unauthorized } from '../../shared/errors.js';

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Admin routes: `Authorization: Bearer <ADMIN_TOKEN>`, compared in constant time. */
export function adminAuth(adminToken: string): Koa.Middleware {
  const expected = digest(adminToken);
  return async (ctx, next) => {
    const match = /^Bearer (.+)$/.exec(ctx.get('authorization'));
    if (!match || !timingSafeEqual(digest(match[1]), expected)) throw unauthorized('Admin token required');
    await next();
  };
}
