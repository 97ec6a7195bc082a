/** docs/api.md and the OpenAPI document describe the same routes and the same error codes. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import { buildApi } from '../../src/admin/index.ts';
import { configWith } from '../../src/config.ts';
import { API_ERRORS } from '../../src/errors.ts';
import { silentLogger } from '../../src/observability/index.ts';
import { AuditStore, openDatabase, tenancyStores } from '../../src/store/index.ts';
import { Tenancy } from '../../src/tenancy/index.ts';

const doc = readFileSync(new URL('../../docs/api.md', import.meta.url), 'utf8');

it('docs/api.md has a row for every route of /openapi.json, and no route the API lacks', async () => {
  const config = configWith({ dataDir: ':memory:' });
  const db = openDatabase(':memory:');
  const tenancy = new Tenancy(tenancyStores(db), config, silentLogger());
  const app = await buildApi({
    tenancy,
    config,
    logger: silentLogger(),
    nodeName: 'test-node',
    audit: new AuditStore(db),
    ports: () => ({}),
    readiness: () => ({ listeners: true, store: true }),
    eventLoopStallMs: () => 0,
  });
  try {
    const spec = (await app.inject({ method: 'GET', url: '/openapi.json' })).json() as {
      paths: Record<string, Record<string, unknown>>;
    };
    const fromSpec = new Set<string>(['GET /openapi.json']);
    for (const [path, methods] of Object.entries(spec.paths))
      for (const method of Object.keys(methods)) fromSpec.add(`${method.toUpperCase()} ${path}`);
    const fromDoc = new Set<string>();
    for (const m of doc.matchAll(/^\| (GET|POST|PATCH|PUT|DELETE) \| `([^`]+)` \|/gm))
      fromDoc.add(`${m[1]} ${m[2]}`);
    assert.deepEqual([...fromSpec].sort(), [...fromDoc].sort());
  } finally {
    await app.close();
    db.close();
  }
});

it('docs/api.md lists every API error code with its HTTP status', () => {
  for (const [name, def] of Object.entries(API_ERRORS))
    assert.ok(doc.includes(`| ${def.http} | ${def.code} |`), `${name}: row "| ${def.http} | ${def.code} |"`);
});
