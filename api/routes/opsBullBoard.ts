import type Koa from 'koa';
import type { Config } from '../../shared/config.js';
import { unauthorized } from '../../shared/errors.js';
import type { Queues } from '../../shared/queues/redis.js';
import { sameSecret } from '../../shared/sameSecret.js';

export const BULL_BOARD_PATH = '/admin/queues';

/**
 * Ops access: `Bearer <ADMIN_TOKEN>` (scripts, curl), or HTTP Basic BULL_BOARD_USER / BULL_BOARD_PASSWORD so a
 * browser can open the board: a 401 carries a Basic challenge, which makes the browser ask for a login.
 */
export function adminOrBasicAuth(config: Pick<Config, 'adminToken' | 'bullBoardUser' | 'bullBoardPassword'>): Koa.Middleware {
  return async (ctx, next) => {
    const header = ctx.get('authorization');
    const bearer = /^Bearer (.+)$/.exec(header);
    const basic = /^Basic ([A-Za-z0-9+/=]+)$/.exec(header);
    let allowed = false;
    if (bearer) allowed = sameSecret(bearer[1], config.adminToken);
    else if (basic) {
      const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      // Evaluate both comparisons so timing says nothing about which half was wrong.
      const userOk = sameSecret(decoded.slice(0, colon), config.bullBoardUser);
      const passwordOk = sameSecret(decoded.slice(colon + 1), config.bullBoardPassword);
      allowed = colon >= 0 && userOk && passwordOk;
    }
    if (!allowed) {
      ctx.set('WWW-Authenticate', 'Basic realm="PayFlow queues", charset="UTF-8"');
      throw unauthorized('Admin token or Bull Board login required');
    }
    await next();
  };
}

/**
 * Bull Board for every PayFlow queue, at /admin/queues, behind adminOrBasicAuth.
 *
 * The board (its UI, templates and adapters) is loaded on the first authorised request, not at start-up: it is an
 * ops page, and importing it cost every API process ~0.1–0.2 s before it could listen (README "Performance").
 */
export function bullBoard(deps: { config: Config; queues: Queues }): Koa.Middleware {
  let board: Promise<Koa.Middleware> | undefined;
  const loadBoard = async (): Promise<Koa.Middleware> => {
    const [{ createBullBoard }, { BullMQAdapter }, { KoaAdapter }] = await Promise.all([
      import('@bull-board/api'),
      import('@bull-board/api/bullMQAdapter'),
      import('@bull-board/koa'),
    ]);
    const serverAdapter = new KoaAdapter();
    serverAdapter.setBasePath(BULL_BOARD_PATH);
    createBullBoard({
      queues: Object.values(deps.queues).map((q) => new BullMQAdapter(q)),
      serverAdapter,
      options: { uiConfig: { boardTitle: 'PayFlow queues' } },
    });
    return serverAdapter.registerPlugin() as unknown as Koa.Middleware;
  };
  const auth = adminOrBasicAuth(deps.config);
  return async (ctx, next) => {
    if (ctx.path !== BULL_BOARD_PATH && !ctx.path.startsWith(`${BULL_BOARD_PATH}/`)) return next();
    await auth(ctx, async () => {
      board ??= loadBoard().catch((err) => {
        board = undefined; // let the next request try again rather than fail forever
        throw err;
      });
      await (await board)(ctx, next);
    });
  };
}
