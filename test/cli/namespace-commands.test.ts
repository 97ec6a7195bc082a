/**
 * `pubsub namespace create|list|describe|delete` run as a user runs them (the real binary)
 * against a running server's admin API: human tables and `--json`, the API's errors with their
 * codes and exit 1, the delete confirmation (refused without a terminal unless --yes) and
 * --cascade.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { show } from '../helpers/pubsub-process.ts';
import { type ApiServer, fieldsOf, row, startApiServer } from './run-cli.ts';

interface Namespace {
  id: string;
  name: string;
  description: string;
  created_on: string;
  modified_on: string;
}

let api: ApiServer;
before(async () => {
  api = await startApiServer();
});
after(() => api.server.close());

describe('pubsub namespace', () => {
  it('create prints the new namespace as fields, and --json prints the API result', async () => {
    const human = await api.ok(['namespace', 'create', 'cli-ns-human', '--description', 'for humans']);
    assert.match(human.stderr, /^Created namespace cli-ns-human\.$/m);
    const fields = fieldsOf(human.stdout);
    assert.equal(fields.get('name'), 'cli-ns-human');
    assert.equal(fields.get('description'), 'for humans');
    assert.match(fields.get('id')!, /^[0-9a-f]{32}$/);
    assert.match(fields.get('created')!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

    const ns = await api.json<Namespace>(['namespace', 'create', 'cli-ns-json']);
    assert.equal(ns.name, 'cli-ns-json');
    assert.equal(ns.description, '');
    assert.match(ns.id, /^[0-9a-f]{32}$/);
  });

  it('list prints an aligned table of every namespace, and --json the array', async () => {
    await api.ok(['namespace', 'create', 'cli-ns-list-a', '--description', 'first one']);
    await api.ok(['namespace', 'create', 'cli-ns-list-bb']);
    const { stdout } = await api.ok(['namespace', 'list']);
    const lines = stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^NAME +ID +CREATED +DESCRIPTION$/);
    const idColumn = lines[0]!.indexOf('ID');
    const descriptionColumn = lines[0]!.indexOf('DESCRIPTION');
    for (const line of lines.slice(1))
      assert.match(line.slice(idColumn, idColumn + 32), /^[0-9a-f]{32}$/, line);
    const a = lines.find((l) => l.startsWith('cli-ns-list-a '))!;
    assert.equal(a.slice(descriptionColumn), 'first one');
    assert.equal(row(stdout, 'cli-ns-list-bb')?.[3], '-', 'an empty description shows as -');
    assert.ok(row(stdout, 'local'), 'the bootstrap namespace is listed');

    const list = await api.json<Namespace[]>(['namespace', 'list']);
    const names = list.map((n) => n.name);
    assert.ok(names.includes('cli-ns-list-a') && names.includes('cli-ns-list-bb') && names.includes('local'));
  });

  it('describe shows one namespace (names are case-insensitive) and --json its object', async () => {
    const created = await api.json<Namespace>([
      'namespace',
      'create',
      'cli-ns-describe',
      '--description',
      'd',
    ]);
    const { stdout } = await api.ok(['namespace', 'describe', 'CLI-NS-DESCRIBE']);
    const fields = fieldsOf(stdout);
    assert.equal(fields.get('id'), created.id);
    assert.equal(fields.get('name'), 'cli-ns-describe');
    assert.equal(fields.get('description'), 'd');
    assert.deepEqual(await api.json<Namespace>(['namespace', 'describe', 'cli-ns-describe']), created);
  });

  it('an unknown namespace prints the API message with its code and exits 1', async () => {
    const args = ['namespace', 'describe', 'cli-no-such-ns'];
    const r = await api.run(args);
    assert.equal(r.code, 1, show(args, r));
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, 'pubsub: namespace cli-no-such-ns not found (code 14003)\n');
  });

  it('a duplicate or invalid name prints the API refusal and exits 1', async () => {
    await api.ok(['namespace', 'create', 'cli-ns-dup']);
    const dup = await api.run(['namespace', 'create', 'cli-ns-dup']);
    assert.equal(dup.code, 1);
    assert.match(dup.stderr, /^pubsub: .*cli-ns-dup.* \(code 14002\)$/m);
    const invalid = await api.run(['namespace', 'create', 'not_a_label']);
    assert.equal(invalid.code, 1);
    assert.match(invalid.stderr, /^pubsub: invalid namespace name: .* \(code 14001\)$/m);
  });

  it('delete without a terminal and without --yes refuses with exit 2 and deletes nothing', async () => {
    await api.ok(['namespace', 'create', 'cli-ns-keep']);
    const args = ['namespace', 'delete', 'cli-ns-keep'];
    const r = await api.run(args, { input: 'y\n' });
    assert.equal(r.code, 2, show(args, r));
    assert.match(r.stderr, /not confirmed \(stdin is not a terminal\); pass --yes/);
    await api.ok(['namespace', 'describe', 'cli-ns-keep']);
  });

  it('delete --yes removes the namespace; --json prints the null result', async () => {
    await api.ok(['namespace', 'create', 'cli-ns-gone']);
    const r = await api.ok(['namespace', 'delete', 'cli-ns-gone', '--yes']);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^Deleted namespace cli-ns-gone\.$/m);
    assert.equal((await api.run(['namespace', 'describe', 'cli-ns-gone'])).code, 1);

    await api.ok(['namespace', 'create', 'cli-ns-gone-json']);
    assert.equal(await api.json(['namespace', 'delete', 'cli-ns-gone-json', '-y']), null);
  });

  it('delete of a namespace with brokers is refused with a --cascade hint; --cascade deletes both', async () => {
    await api.ok(['namespace', 'create', 'cli-ns-full']);
    await api.ok(['broker', 'create', 'inside', '--ns', 'cli-ns-full']);
    const refused = await api.run(['namespace', 'delete', 'cli-ns-full', '--yes']);
    assert.equal(refused.code, 1, show(['namespace', 'delete'], refused));
    assert.match(refused.stderr, /\(code 14004\)\npubsub: pass --cascade to delete its brokers with it\n$/);
    await api.ok(['broker', 'describe', 'inside', '--ns', 'cli-ns-full']);

    await api.ok(['namespace', 'delete', 'cli-ns-full', '--cascade', '--yes']);
    assert.equal((await api.run(['namespace', 'describe', 'cli-ns-full'])).code, 1);
  });

  it('a missing name or an unknown verb is a usage error (exit 2)', async () => {
    const missing = await api.run(['namespace', 'create']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /missing required argument 'name'/);
    const unknown = await api.run(['namespace', 'rename', 'x']);
    assert.equal(unknown.code, 2);
    const bare = await api.run(['namespace']);
    assert.equal(bare.code, 2, 'a group without a verb prints help and exits 2');
    assert.match(bare.stderr, /Usage: pubsub namespace/);
  });
});
