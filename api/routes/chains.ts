import type Router from '@koa/router';
import { createRouter } from './router.js';
import type { ApiDeps } from '../deps.js';
import { requireScope } from '../auth/merchantAuth.js';

export function chainRoutes(deps: ApiDeps): Router {
  const router = createRouter();
  // Fixed by the configuration: serialised once, not per request.
  const body = JSON.stringify({
    object: 'list',
    data: deps.config.chains.map((c) => ({
      chain_id: c.chainId,
      name: c.name,
      confirmations: c.confirmations,
      block_time: c.blockTimeSeconds,
      assets: [
        { currency: c.nativeSymbol, type: 'native', contract_address: null, decimals: c.nativeDecimals },
        ...c.tokens.map((t) => ({ currency: t.symbol, type: 'erc20', contract_address: t.address, decimals: t.decimals })),
      ],
    })),
    has_more: false,
  });
  router.get('/chains', requireScope('read'), (ctx) => {
    ctx.type = 'json';
    ctx.body = body;
  });
  return router;
}
