import { readFileSync } from 'node:fs';
import type Router from '@koa/router';
import { createRouter } from './router.js';
import { renderApiDocs } from '../docs/renderApiDocs.js';

/** The OpenAPI document kept in the repo; every route the app registers must be in it (test/integration/openapi.test.ts). */
export const OPENAPI_PATH = new URL('../../docs/openapi.json', import.meta.url);

/** GET /openapi.json (the document) and GET /docs (a readable page rendered from it, self-contained). Public. */
export function apiDocsRoutes(): Router {
  const document = JSON.parse(readFileSync(OPENAPI_PATH, 'utf8'));
  const page = renderApiDocs(document);
  const router = createRouter();
  const documentJson = JSON.stringify(document); // the same bytes every time: serialised once, not per request
  router.get('/openapi.json', (ctx) => {
    ctx.type = 'json';
    ctx.body = documentJson;
  });
  router.get('/docs', (ctx) => {
    ctx.type = 'text/html; charset=utf-8';
    ctx.body = page;
  });
  return router;
}
