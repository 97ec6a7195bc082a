/**
 * `pubsub token create|list|revoke|verify` and `pubsub account list|create|rename|delete` /
 * `pubsub accounts` through the real binary: a created token's secret works as PUBSUB_API_TOKEN
 * until revoked and only as far as its grant, lists never show secrets, an explicit `--account`
 * must be one the token may use, and deleting an account asks first.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { show } from '../helpers/pubsub-process.ts';
import { type ApiServer, row, startApiServer } from './run-cli.ts';

interface Token {
  id: string;
  name: string;
  status: string;
  issued_on: string;
  last_used_on: string | null;
  value?: string;
}

let api: ApiServer;
before(async () => {
  api = await startApiServer();
});
after(() => api.server.close());

describe('pubsub token', () => {
  it('create prints only the secret on stdout (id on stderr); the secret works as PUBSUB_API_TOKEN', async () => {
    const { stdout, stderr } = await api.ok(['token', 'create', 'cli-ci']);
    const secret = stdout.trimEnd();
    assert.equal(stdout.split('\n').length, 2, 'one line');
    assert.match(
      stderr,
      /^Created admin API token cli-ci \(id [0-9a-f]{32}; pubsub:edit, tokens:edit\)\. The secret below is shown once:$/m,
    );
    const list = await api.json<unknown[]>(['namespace', 'list'], { env: { PUBSUB_API_TOKEN: secret } });
    assert.ok(Array.isArray(list));
  });

  it('create --json prints the token object with its value once; list never shows values', async () => {
    const created = await api.json<Token>(['token', 'create', 'cli-json-token']);
    assert.equal(created.name, 'cli-json-token');
    assert.equal(created.status, 'active');
    assert.equal(typeof created.value, 'string');

    const listed = await api.json<Token[]>(['token', 'list']);
    const mine = listed.find((t) => t.id === created.id);
    assert.ok(mine, 'the new token is listed');
    assert.equal(mine.value, undefined);
    assert.ok(listed.some((t) => t.name === 'bootstrap admin token'));

    const { stdout } = await api.ok(['token', 'list']);
    assert.match(stdout.split('\n')[0]!, /^ID +NAME +PERMISSIONS +STATUS +EXPIRES +LAST USED$/);
    const cells = row(stdout, created.id);
    assert.deepEqual(cells?.slice(1, 5), ['cli-json-token', 'pubsub:edit,tokens:edit', 'active', '-']);
    assert.equal(cells?.[5], '-', 'never used');
    assert.ok(!stdout.includes(created.value!), 'no secret in the table');
  });

  it('revoke makes the token fail at once: 403 with the API message, the token source, exit 1', async () => {
    const created = await api.json<Token>(['token', 'create', 'cli-revoked']);
    const revoked = await api.ok(['token', 'revoke', created.id]);
    assert.match(revoked.stderr, new RegExp(`^Revoked admin API token ${created.id}\\.$`, 'm'));
    assert.ok(!(await api.json<Token[]>(['token', 'list'])).some((t) => t.id === created.id));

    const args = ['namespace', 'list'];
    const r = await api.run(args, { env: { PUBSUB_API_TOKEN: created.value! } });
    assert.equal(r.code, 1, show(args, r));
    assert.equal(
      r.stderr,
      'pubsub: invalid API token (code 10000)\npubsub: the token came from PUBSUB_API_TOKEN\n',
    );
  });

  it('update replaces name and grant (the secret stays); roll prints a new secret alone and the old one stops', async () => {
    const created = await api.json<Token>(['token', 'create', 'cli-rolled']);
    const updated = await api.ok([
      'token',
      'update',
      created.id,
      'cli-reader',
      '--permission',
      'pubsub:read',
    ]);
    assert.match(
      updated.stderr,
      new RegExp(`^Updated admin API token cli-reader \\(id ${created.id}; pubsub:read\\)\\.$`, 'm'),
    );
    const env = { PUBSUB_API_TOKEN: created.value! };
    assert.ok(Array.isArray(await api.json(['namespace', 'list'], { env })), 'reads with the same secret');
    const write = await api.run(['namespace', 'create', 'cli-rolled-ns'], { env });
    assert.equal(write.code, 1, 'a read token cannot write any more');

    const rolled = await api.ok(['token', 'roll', created.id]);
    const secret = rolled.stdout.trimEnd();
    assert.equal(rolled.stdout.split('\n').length, 2, 'the secret alone, one line');
    assert.notEqual(secret, created.value);
    assert.match(
      rolled.stderr,
      new RegExp(`^Rolled admin API token ${created.id}\\. The new secret below is shown once:$`, 'm'),
    );
    const old = await api.run(['namespace', 'list'], { env });
    assert.equal(old.code, 1);
    assert.match(old.stderr, /invalid API token \(code 10000\)/);
    assert.ok(Array.isArray(await api.json(['namespace', 'list'], { env: { PUBSUB_API_TOKEN: secret } })));
  });

  it('revoke --json prints the result; an unknown id is the API error, exit 1', async () => {
    const created = await api.json<Token>(['token', 'create', 'cli-revoke-json']);
    assert.deepEqual(await api.json(['token', 'revoke', created.id]), { id: created.id });
    const again = await api.run(['token', 'revoke', created.id]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^pubsub: no API token [0-9a-f]{32} \(code 14008\)$/m);
  });
});

describe('pubsub account list / pubsub accounts', () => {
  it('lists the account of the token as a table and as JSON', async () => {
    for (const verb of [['accounts'], ['account', 'list']]) {
      const { stdout } = await api.ok(verb);
      assert.match(stdout.split('\n')[0]!, /^ID +NAME +CREATED$/);
      assert.ok(row(stdout, api.server.accountId), show(verb, { code: 0, stdout, stderr: '' }));
      const list = await api.json<{ id: string }[]>(verb);
      assert.deepEqual(
        list.map((a) => a.id),
        [api.server.accountId],
      );
    }
  });

  it('--account and PUBSUB_ACCOUNT_ID pick the account; another account is refused by the API (exit 1)', async () => {
    await api.ok(['namespace', 'list', '--account', api.server.accountId]);
    await api.ok(['namespace', 'list'], { env: { PUBSUB_ACCOUNT_ID: api.server.accountId } });
    const other = 'f'.repeat(32);
    const r = await api.run(['namespace', 'list', '--account', other]);
    assert.equal(r.code, 1, show(['namespace', 'list', '--account', other], r));
    assert.match(r.stderr, new RegExp(`^pubsub: could not route to account ${other} \\(code 7003\\)$`, 'm'));
  });

  it('an --account that is not 32 hex digits is a usage error (exit 2)', async () => {
    const r = await api.run(['namespace', 'list', '--account', 'acme']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /account id must be 32 lowercase hex digits, got acme/);
  });
});

describe('scoped tokens from the CLI', () => {
  it('token create --permission --namespace --expires --allow-ip: the grant is shown, and the API holds the token to it', async () => {
    const created = await api.json<
      Token & { permissions: string[]; expires_on: string; resources: unknown; condition: unknown }
    >([
      'token',
      'create',
      'cli-reader',
      '--permission',
      'pubsub:read',
      '--namespace',
      'local',
      '--expires',
      '30d',
      '--allow-ip',
      '127.0.0.0/8',
      '--deny-ip',
      '10.0.0.0/8',
    ]);
    assert.deepEqual(created.permissions, ['pubsub:read']);
    assert.deepEqual(created.resources, { accounts: [api.server.accountId], namespaces: ['local'] });
    assert.deepEqual(created.condition, { request_ip: { in: ['127.0.0.0/8'], not_in: ['10.0.0.0/8'] } });
    const days = (Date.parse(created.expires_on) - Date.now()) / 86_400_000;
    assert.ok(days > 29.9 && days <= 30, `expires in ${days} days`);

    const env = { PUBSUB_API_TOKEN: created.value! };
    const names = await api.json<{ name: string }[]>(['namespace', 'list'], { env });
    assert.deepEqual(
      names.map((n) => n.name),
      ['local'],
    );
    const args = ['namespace', 'create', 'cli-denied'];
    const r = await api.run(args, { env });
    assert.equal(r.code, 1, show(args, r));
    assert.match(r.stderr, /^pubsub: this API token lacks the pubsub:edit permission \(code 9109\)$/m);

    const { stdout } = await api.ok(['token', 'list']);
    const cells = row(stdout, created.id);
    assert.deepEqual(cells?.slice(1, 4), ['cli-reader', 'pubsub:read', 'active']);
    assert.equal(cells?.[4], created.expires_on.replace(/\.\d+Z$/, 'Z'));
  });

  it('token create refuses an unknown permission as a usage error (exit 2)', async () => {
    const r = await api.run(['token', 'create', 'x', '--permission', 'pubsub:all']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /must be one of pubsub:read, pubsub:edit, tokens:edit, operator/);
  });

  it('token verify prints the status of the token in use', async () => {
    const { stdout } = await api.ok(['token', 'verify']);
    assert.match(stdout, /^Token [0-9a-f]{32} is active; never expires\.$/m);
    const created = await api.json<Token>(['token', 'create', 'cli-verify', '--expires', '1h']);
    const verified = await api.json<{ id: string; status: string; expires_on: string }>(['token', 'verify'], {
      env: { PUBSUB_API_TOKEN: created.value! },
    });
    assert.equal(verified.id, created.id);
    assert.equal(verified.status, 'active');
    assert.ok(verified.expires_on);
  });
});

describe('pubsub account create|rename|delete (operator)', () => {
  it('create prints the id; list shows it; rename renames; delete asks, then removes it and its tokens', async () => {
    const { stdout, stderr } = await api.ok(['account', 'create', 'customer one']);
    const id = stdout.trim();
    assert.match(id, /^[0-9a-f]{32}$/);
    assert.match(stderr, new RegExp(`^Created account customer one \\(id ${id}\\)\\.$`, 'm'));
    assert.equal(row((await api.ok(['account', 'list'])).stdout, id)?.[1], 'customer one');

    const renamed = await api.json<{ name: string }>(['account', 'rename', id, 'customer two']);
    assert.equal(renamed.name, 'customer two');

    const owned = await api.json<Token>(['token', 'create', 'of-one', '--account', id]);
    await api.ok(['namespace', 'create', 'one-ns', '--account', id]);

    const declined = await api.run(['account', 'delete', id]);
    assert.equal(declined.code, 2, 'no terminal and no --yes: refused');
    assert.match(declined.stderr, /not confirmed \(stdin is not a terminal\); pass --yes/);
    assert.ok((await api.json<{ id: string }[]>(['account', 'list'])).some((a) => a.id === id));

    await api.ok(['account', 'delete', id, '--yes']);
    assert.ok(!(await api.json<{ id: string }[]>(['account', 'list'])).some((a) => a.id === id));
    const r = await api.run(['token', 'verify'], { env: { PUBSUB_API_TOKEN: owned.value! } });
    assert.equal(r.code, 1, 'the account’s tokens went with it');
    await api.ok(['namespace', 'create', 'one-ns']);
  });

  it('a token without the operator permission cannot create accounts (exit 1, 9109)', async () => {
    const created = await api.json<Token>(['token', 'create', 'not-operator']);
    const r = await api.run(['account', 'create', 'x'], { env: { PUBSUB_API_TOKEN: created.value! } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /lacks the operator permission \(code 9109\)/);
  });
});
