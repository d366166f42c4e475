/**
 * Renders an OpenAPI 3.1 document as one self-contained HTML page (inline CSS, no scripts, no CDN): every operation
 * with its parameters, request body and responses, schemas shown as JSON. Enough for a person; tools read
 * /openapi.json.
 */

import { escapeHtml } from '../checkout/html.js';

type Json = Record<string, any>;

const escape = (s: unknown) => escapeHtml(String(s ?? ''));

const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;

export function renderApiDocs(doc: Json): string {
  const resolve = (node: Json | undefined): Json | undefined => {
    let n = node;
    for (let i = 0; n && typeof n.$ref === 'string' && i < 10; i++) {
      n = n.$ref.replace(/^#\//, '').split('/').reduce((o: Json | undefined, k: string) => o?.[k.replace(/~1/g, '/').replace(/~0/g, '~')], doc);
    }
    return n;
  };
  const schemaName = (s: Json | undefined) => (s?.$ref ? String(s.$ref).split('/').pop() : undefined);
  const schemaBlock = (s: Json | undefined) => {
    if (!s) return '';
    const name = schemaName(s);
    if (name) return `<a href="#schema-${escape(name)}"><code>${escape(name)}</code></a>`;
    return `<pre>${escape(JSON.stringify(s, null, 2))}</pre>`;
  };

  const sections: string[] = [];
  const toc: string[] = [];
  const byTag = new Map<string, string[]>();
  for (const [path, item] of Object.entries<Json>(doc.paths ?? {})) {
    for (const method of METHODS) {
      const op: Json | undefined = item[method];
      if (!op) continue;
      const anchor = `${method}-${path}`.replace(/[^A-Za-z0-9]+/g, '-');
      const params = [...(item.parameters ?? []), ...(op.parameters ?? [])].map((p: Json) => resolve(p)!);
      const security = op.security ?? doc.security ?? [];
      const auth = security.length === 0 ? 'public' : security.map((s: Json) => Object.keys(s).join(' + ')).join(' or ');
      const body = resolve(op.requestBody);
      const responses = Object.entries<Json>(op.responses ?? {}).map(([status, r]) => {
        const resp = resolve(r)!;
        return `<tr><td><code>${escape(status)}</code></td><td>${escape(resp.description)}</td><td>${schemaBlock(resp.content?.['application/json']?.schema)}</td></tr>`;
      });
      const html = `
<section id="${anchor}" class="op">
  <h3><span class="m ${method}">${method.toUpperCase()}</span> <code>${escape(path)}</code></h3>
  <p><strong>${escape(op.summary)}</strong> <span class="auth">auth: ${escape(auth)}</span></p>
  ${op.description ? `<p>${escape(op.description)}</p>` : ''}
  ${params.length ? `<table><tr><th>parameter</th><th>in</th><th>description</th></tr>${params.map((p) => `<tr><td><code>${escape(p.name)}</code>${p.required ? ' *' : ''}</td><td>${escape(p.in)}</td><td>${escape(p.description)}</td></tr>`).join('')}</table>` : ''}
  ${body ? `<p>Request body (JSON): ${schemaBlock(body.content?.['application/json']?.schema)}</p>` : ''}
  <table><tr><th>status</th><th>meaning</th><th>body</th></tr>${responses.join('')}</table>
</section>`;
      const tag = op.tags?.[0] ?? 'other';
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag)!.push(html);
      toc.push(`<li><a href="#${anchor}"><span class="m ${method}">${method.toUpperCase()}</span> ${escape(path)}</a></li>`);
    }
  }
  // Sections in the document's tag order (payments first), then any tag it does not list.
  const order = [...(doc.tags ?? []).map((t: Json) => t.name), ...byTag.keys()];
  for (const tag of new Set(order)) if (byTag.has(tag)) sections.push(`<h2>${escape(tag)}</h2>${byTag.get(tag)!.join('')}`);
  const schemas = Object.entries<Json>(doc.components?.schemas ?? {}).map(
    ([name, s]) => `<section id="schema-${escape(name)}"><h3><code>${escape(name)}</code></h3><pre>${escape(JSON.stringify(s, null, 2))}</pre></section>`,
  );

  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escape(doc.info?.title)} API ${escape(doc.info?.version)}</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;margin:0;display:flex;color:#1d2330}
nav{width:320px;height:100vh;overflow:auto;position:sticky;top:0;background:#f4f6fa;padding:16px;box-sizing:border-box;font-size:13px}
nav ul{list-style:none;padding:0}nav li{white-space:nowrap;overflow:hidden;text-overflow:ellipsis}nav a{color:inherit;text-decoration:none}
main{flex:1;padding:24px 40px;max-width:1000px}
.m{display:inline-block;min-width:52px;font:bold 11px monospace;padding:2px 4px;border-radius:3px;color:#fff;text-align:center}
.get{background:#2f7bd9}.post{background:#2e9d5b}.delete{background:#c9423a}.patch{background:#b07b12}.put{background:#7a4fc9}
.op{border-top:1px solid #dde2ea;padding:8px 0}.auth{color:#667;font-size:13px;margin-left:8px}
table{border-collapse:collapse;margin:8px 0;width:100%}td,th{border:1px solid #dde2ea;padding:4px 8px;text-align:left;vertical-align:top}
pre{background:#f4f6fa;padding:8px;overflow:auto;font-size:12px;max-height:400px}code{font-size:13px}
</style></head><body>
<nav><strong>${escape(doc.info?.title)} ${escape(doc.info?.version)}</strong><p><a href="/openapi.json">openapi.json</a></p><ul>${toc.join('')}</ul></nav>
<main><h1>${escape(doc.info?.title)} API</h1><p>${escape(doc.info?.description)}</p>
${sections.join('\n')}
<h2>Schemas</h2>${schemas.join('\n')}
</main></body></html>`;
}
