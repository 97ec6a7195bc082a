/**
 * `pubsub token create|list|revoke` and `pubsub account list` / `pubsub accounts` through the
 * real binary: a created token's secret works as PUBSUB_API_TOKEN until revoked, lists never
 * show secrets, and an explicit `--account` must be the token's.
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
      /^Created admin API token cli-ci \(id [0-9a-f]{32}\)\. The secret below is shown once:$/m,
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
    assert.match(stdout.split('\n')[0]!, /^ID +NAME +STATUS +ISSUED +LAST USED$/);
    const cells = row(stdout, created.id);
    assert.deepEqual(cells?.slice(1, 3), ['cli-json-token', 'active']);
    assert.equal(cells?.[4], '-', 'never used');
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
