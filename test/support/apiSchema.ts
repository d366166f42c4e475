import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { expect } from 'chai';

/**
 * Checks API responses against docs/openapi.json: the response schema of (method, documented path, status) must
 * exist and accept the body. Used by the API integration tests on every response they look at, so the document
 * cannot drift from what the API really answers.
 */
export const openapi = JSON.parse(readFileSync(new URL('../../docs/openapi.json', import.meta.url), 'utf8'));

const ajv = new Ajv2020({ strict: false, allErrors: true });
(addFormats as unknown as (a: Ajv2020) => void)(ajv);
ajv.addSchema(openapi, 'openapi.json');

const pointer = (...parts: string[]) => parts.map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/');

function resolveRef(node: any): any {
  let n = node;
  while (n && typeof n.$ref === 'string') {
    n = n.$ref.replace(/^#\//, '').split('/').reduce((o: any, k: string) => o?.[k.replace(/~1/g, '/').replace(/~0/g, '~')], openapi);
  }
  return n;
}

export let schemaChecks = 0;

/** `documentedPath` as in the document, e.g. `/api/v1/payments/{id}`. */
export function expectMatchesSpec(method: string, documentedPath: string, res: { status: number; body: unknown }): void {
  const operation = openapi.paths[documentedPath]?.[method.toLowerCase()];
  expect(operation, `${method} ${documentedPath} is not in docs/openapi.json`).to.be.an('object');
  const response = resolveRef(operation.responses[String(res.status)]);
  expect(response, `${method} ${documentedPath} answered ${res.status}, which docs/openapi.json does not list`).to.be.an('object');
  const json = response.content?.['application/json'];
  if (!json) return;
  const ref = operation.responses[String(res.status)].$ref
    ? `openapi.json#${response.__pointer ?? pointer('components', 'responses', operation.responses[String(res.status)].$ref.split('/').pop(), 'content', 'application/json', 'schema')}`
    : `openapi.json#/${pointer('paths', documentedPath, method.toLowerCase(), 'responses', String(res.status), 'content', 'application/json', 'schema')}`;
  const validateBody = ajv.getSchema(ref.replace('#components', '#/components'));
  expect(validateBody, `no schema at ${ref}`).to.be.a('function');
  const ok = validateBody!(res.body);
  expect(ok, `${method} ${documentedPath} ${res.status} does not match docs/openapi.json: ${ajv.errorsText(validateBody!.errors)}\n${JSON.stringify(res.body).slice(0, 500)}`).to.equal(true);
  schemaChecks++;
}
