/**
 * Issue 21's store migration: admin API tokens made before scoped tokens keep working. On a
 * database written by the previous schema, the bootstrap token becomes `operator` and every
 * other token `pubsub:edit` + `tokens:edit` on its own account, checked through a real server's
 * API with the old secrets.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { hashApiToken } from '../../src/auth/index.ts';
import { MIGRATIONS, openDatabase } from '../../src/store/index.ts';
import { startServer } from '../helpers/server.ts';

const SCOPED = MIGRATIONS.findIndex((m) => m.includes('ADD COLUMN permissions'));

it('tokens of the previous schema keep working: bootstrap → operator, others → pubsub:edit + tokens:edit', async (t) => {
  assert.ok(SCOPED > 0);
  const dir = mkdtempSync(join(tmpdir(), 'pubsub-migration-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const account = 'a'.repeat(32);
  const old = openDatabase(dir, MIGRATIONS.slice(0, SCOPED));
  old
    .prepare('INSERT INTO accounts (id, name, created_on) VALUES (?, ?, ?)')
    .run(account, 'local', '2026-01-01T00:00:00Z');
  const insert = old.prepare(
    'INSERT INTO api_tokens (id, account_id, name, hash, issued_on) VALUES (?, ?, ?, ?, ?)',
  );
  insert.run(
    '1'.repeat(32),
    account,
    'bootstrap admin token',
    hashApiToken('old-bootstrap'),
    '2026-01-01T00:00:00Z',
  );
  insert.run('2'.repeat(32), account, 'ci', hashApiToken('old-ci'), '2026-01-02T00:00:00Z');
  old.close();
  writeFileSync(join(dir, 'admin-token'), 'old-bootstrap\n', { mode: 0o600 });

  const ts = await startServer({ dataDir: dir, httpPort: 0 });
  t.after(() => ts.close());
  const call = async (secret: string, method: string, path: string, body?: unknown) => {
    const res = await fetch(`${ts.apiUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as { result: { permissions?: string[] }[] } };
  };
  const tokens = await call('old-bootstrap', 'GET', `/client/v4/accounts/${account}/tokens`);
  assert.equal(tokens.status, 200);
  assert.deepEqual(
    tokens.body.result.map((x) => x.permissions),
    [['operator'], ['pubsub:edit', 'tokens:edit']],
  );
  assert.equal((await call('old-bootstrap', 'POST', '/client/v4/accounts', { name: 'new' })).status, 200);
  assert.equal((await call('old-ci', 'GET', `/client/v4/accounts/${account}/pubsub/namespaces`)).status, 200);
  assert.equal(
    (await call('old-ci', 'POST', `/client/v4/accounts/${account}/tokens`, { name: 'child' })).status,
    200,
  );
  assert.equal((await call('old-ci', 'POST', '/client/v4/accounts', { name: 'nope' })).status, 403);
});
