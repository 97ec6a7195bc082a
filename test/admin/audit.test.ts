/**
 * The audit log end to end: a real `pubsub serve`, changes made with fetch, curl and the CLI,
 * the log read back through `GET .../audit_logs`, `pubsub audit`, the server's own log lines and
 * its database file. Each kind of change is recorded with its actor, object and old/new values;
 * no secret (an API token's value, a client JWT, a webhook URL's password or token, a function's
 * source) reaches an entry or the log; paging, filters, account isolation and retention hold.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { it, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { until } from '../helpers/child-process.ts';
import { curl, describeWithTool } from '../helpers/interop-tools.ts';
import { type RunningServe, runCli, show, startServe } from '../helpers/pubsub-process.ts';

const run = promisify(execFile);

const HOOK_PASSWORD = 'hook-password-5b1e';
const HOOK_QUERY_TOKEN = 'hook-query-token-77c0';
const HOOK_URL = `http://hook:${HOOK_PASSWORD}@127.0.0.1:9/in?token=${HOOK_QUERY_TOKEN}&tag=a`;
const FUNCTION_SECRET = 'function-source-secret-9d2f';
const FUNCTION = `const API_KEY = '${FUNCTION_SECRET}';
export function onPublish(messages) { return API_KEY === '' ? [] : messages; }`;
const OTHER_ACCOUNT = 'f'.repeat(32);

interface Entry {
  id: string;
  when: string;
  action: { type: string; result: boolean; info: string };
  actor: { id: string; type: string; name: string; ip: string };
  owner: { id: string };
  resource: { type: string; id: string | null };
  oldValue: string | null;
  newValue: string | null;
  oldValueJson: Record<string, unknown> | null;
  newValueJson: Record<string, unknown> | null;
  metadata: Record<string, unknown> & { method: string; status: number; error_code: number | null };
}

interface Envelope<T = unknown> {
  success: boolean;
  result: T;
  errors: { code: number; message: string }[];
  result_info?: { page: number; per_page: number; count: number; total_count: number };
}

class Client {
  readonly s: RunningServe;
  readonly token: string;
  constructor(s: RunningServe, token: string) {
    this.s = s;
    this.token = token;
  }
  async call<T = unknown>(
    method: string,
    path: string,
    body?: unknown,
    account = this.s.accountId,
  ): Promise<Envelope<T>> {
    const response = await fetch(`${this.s.apiUrl}/client/v4/accounts/${account}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${this.token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return (await response.json()) as Envelope<T>;
  }
  async ok<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const out = await this.call<T>(method, path, body);
    assert.equal(out.success, true, `${method} ${path}: ${JSON.stringify(out)}`);
    return out.result;
  }
  /** The whole audit log (oldest first) or the envelope of one query. */
  async audit(query = ''): Promise<Envelope<Entry[]>> {
    return this.call<Entry[]>('GET', `/audit_logs?${query}`);
  }
}

async function serve(t: TestContext, args: string[] = []): Promise<{ s: RunningServe; admin: Client }> {
  const s = await startServe(t, { args, env: { PUBSUB_LOG_LEVEL: 'info' } });
  const token = readFileSync(join(s.dataDir, 'admin-token'), 'utf8').trim();
  return { s, admin: new Client(s, token) };
}

it('records every kind of change with its actor, object and redacted old and new values', async (t) => {
  const { s, admin } = await serve(t);
  const ns = '/pubsub/namespaces';
  const broker = `${ns}/audited/brokers/b1`;
  const [bootstrap] = await admin.ok<{ id: string; name: string }[]>('GET', '/tokens');

  await admin.ok('POST', ns, { name: 'audited' });
  await admin.ok('POST', `${ns}/audited/brokers`, {
    name: 'b1',
    authType: 'TOKEN',
    on_publish: { url: HOOK_URL },
  });
  await admin.ok('PATCH', broker, { description: 'changed', on_publish: { url: null } });
  const issued = await admin.ok<Record<string, string>>('GET', `${broker}/credentials?clientid=dev1`);
  const jwt = issued.dev1!;
  const jti = JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()).jti as string;
  await admin.ok('POST', `${broker}/revocations?jti=${jti}`);
  await admin.ok('PUT', `${broker}/hook/function`, { code: FUNCTION });
  const ci = await admin.ok<{ id: string; value: string }>('POST', '/tokens', { name: 'ci' });
  const byCi = new Client(s, ci.value);
  await byCi.ok('PATCH', broker, { description: 'by ci' });
  await admin.ok('DELETE', `/tokens/${ci.id}`);
  await admin.ok('DELETE', broker);
  await admin.ok('DELETE', `${ns}/audited`);
  const refused = await admin.call('POST', ns, { name: 'elsewhere' }, OTHER_ACCOUNT);
  assert.equal(refused.errors[0]?.code, 7003);

  const log = await admin.audit('direction=asc');
  const entries = log.result;
  // The server's log lines reach this process asynchronously: wait for them all first.
  const auditLines = () =>
    s.child.lines
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.msg === 'audit');
  await until(() => auditLines().length >= entries.length, 'an audit log line per entry');
  assert.deepEqual(
    entries.map((e) => [e.action.type, e.resource.type, e.resource.id, e.metadata.status, e.actor.name]),
    [
      ['create', 'namespace', 'audited', 200, bootstrap!.name],
      ['create', 'broker', 'b1', 200, bootstrap!.name],
      ['update', 'broker', 'b1', 200, bootstrap!.name],
      ['issue', 'credentials', 'dev1', 200, bootstrap!.name],
      ['revoke', 'revocation', jti, 200, bootstrap!.name],
      ['deploy', 'hook_function', 'b1', 200, bootstrap!.name],
      ['create', 'token', ci.id, 200, bootstrap!.name],
      ['update', 'broker', 'b1', 200, 'ci'],
      ['delete', 'token', ci.id, 200, bootstrap!.name],
      ['delete', 'broker', 'b1', 200, bootstrap!.name],
      ['delete', 'namespace', 'audited', 200, bootstrap!.name],
      ['create', 'namespace', null, 404, bootstrap!.name],
    ],
  );
  const [
    nsCreate,
    bCreate,
    bUpdate,
    creds,
    revoke,
    deploy,
    tCreate,
    ciUpdate,
    tDelete,
    bDelete,
    nsDelete,
    forbidden,
  ] = entries as [Entry, Entry, Entry, Entry, Entry, Entry, Entry, Entry, Entry, Entry, Entry, Entry];

  await t.test('who, when and from where', () => {
    for (const e of entries) {
      assert.equal(e.owner.id, s.accountId);
      assert.equal(e.actor.ip, '127.0.0.1');
      assert.equal(e.actor.type, 'token');
      assert.ok(Math.abs(Date.parse(e.when) - Date.now()) < 60_000, e.when);
    }
    assert.equal(bUpdate.actor.id, bootstrap!.id);
    assert.equal(ciUpdate.actor.id, ci.id);
  });

  await t.test('what: route pattern, concrete path, method and object ids', () => {
    assert.equal(bUpdate.metadata.method, 'PATCH');
    assert.equal(
      bUpdate.metadata.route,
      '/client/v4/accounts/:account_id/pubsub/namespaces/:namespace/brokers/:broker',
    );
    assert.equal(bUpdate.metadata.path, `/client/v4/accounts/${s.accountId}${broker}`);
    assert.deepEqual([bUpdate.metadata.namespace, bUpdate.metadata.broker], ['audited', 'b1']);
    assert.deepEqual(revoke.metadata.query, { jti });
    assert.equal(nsCreate.action.info, 'POST /client/v4/accounts/:account_id/pubsub/namespaces');
  });

  await t.test('old and new values: before from the object, after from the answer', () => {
    assert.equal(nsCreate.oldValueJson, null);
    assert.equal(nsCreate.newValueJson?.name, 'audited');
    assert.equal(bCreate.newValueJson?.authType, 'TOKEN');
    assert.equal(bUpdate.oldValueJson?.description, '');
    assert.equal(bUpdate.newValueJson?.description, 'changed');
    assert.equal(ciUpdate.oldValueJson?.description, 'changed');
    assert.equal(ciUpdate.newValueJson?.description, 'by ci');
    assert.equal(bUpdate.newValue, JSON.stringify(bUpdate.newValueJson));
    assert.deepEqual(creds.newValueJson, { dev1: { jti, exp: null } });
    assert.equal(deploy.oldValueJson, null);
    assert.equal(deploy.newValueJson?.version, 1);
    assert.equal(tCreate.newValueJson?.name, 'ci');
    assert.equal(tDelete.oldValueJson?.name, 'ci');
    assert.equal(tDelete.oldValueJson?.id, ci.id);
    assert.equal(bDelete.oldValueJson?.description, 'by ci');
    assert.equal(bDelete.newValueJson, null);
    assert.equal(nsDelete.oldValueJson?.name, 'audited');
  });

  await t.test(
    'a write refused after authentication (404 for an account the token cannot use) is recorded in the caller account',
    () => {
      assert.equal(forbidden.action.result, false);
      assert.equal(forbidden.metadata.error_code, 7003);
      assert.equal(forbidden.newValueJson, null);
      assert.ok(entries.slice(0, -1).every((e) => e.action.result));
    },
  );

  await t.test('secrets appear neither in the entries nor in the server log', () => {
    const secrets = [ci.value, jwt, HOOK_PASSWORD, HOOK_QUERY_TOKEN, FUNCTION_SECRET];
    const everywhere = `${JSON.stringify(entries)}\n${s.child.lines.join('\n')}\n${s.child.stderr}`;
    for (const secret of secrets) assert.ok(!everywhere.includes(secret), `${secret} leaked`);
    assert.equal(tCreate.newValueJson?.value, '[REDACTED]');
    for (const value of [bCreate.newValueJson, bUpdate.oldValueJson]) {
      const url = new URL((value!.on_publish as { url: string }).url);
      assert.deepEqual(
        [url.password, url.searchParams.get('token'), url.searchParams.get('tag')],
        ['REDACTED', 'REDACTED', 'a'],
      );
    }
    assert.equal(bUpdate.newValueJson?.on_publish, undefined);
  });

  await t.test("one 'audit' log line per change, with the entry's fields", () => {
    const lines = auditLines();
    assert.deepEqual(
      lines.map((l) => l.audit_id),
      entries.map((e) => e.id),
    );
    const line = lines[2]!;
    assert.deepEqual(line.actor, { id: bootstrap!.id, name: bootstrap!.name, ip: '127.0.0.1' });
    assert.deepEqual([line.action, line.method, line.status], ['update', 'PATCH', 200]);
    assert.deepEqual((line.new_value as { description: string }).description, 'changed');
  });

  await t.test('paging: page and per_page, newest first, with counted result_info', async () => {
    const page = await admin.audit('per_page=5&page=3');
    assert.deepEqual(page.result_info, { page: 3, per_page: 5, count: 2, total_count: 12, total_pages: 3 });
    assert.deepEqual(
      page.result.map((e) => e.id),
      [bCreate.id, nsCreate.id],
    );
  });

  await t.test(
    'filters: actor.id, action.type, method, resource.type, zone.name, since and before',
    async () => {
      const ids = async (query: string) => (await admin.audit(query)).result.map((e) => e.id).reverse();
      assert.deepEqual(await ids(`actor.id=${ci.id}`), [ciUpdate.id]);
      assert.deepEqual(await ids('action.type=delete'), [tDelete.id, bDelete.id, nsDelete.id]);
      assert.deepEqual(await ids('method=PATCH'), [bUpdate.id, ciUpdate.id]);
      assert.deepEqual(await ids('resource.type=token'), [tCreate.id, tDelete.id]);
      assert.deepEqual(await ids('zone.name=b1.audited'), [
        bCreate.id,
        bUpdate.id,
        creds.id,
        revoke.id,
        deploy.id,
        ciUpdate.id,
        bDelete.id,
      ]);
      assert.equal((await ids('zone.name=audited')).length, 9);
      const since = await ids(`since=${encodeURIComponent(forbidden.when)}`);
      assert.equal(since.at(-1), forbidden.id);
      assert.ok(!(await ids(`before=${encodeURIComponent(nsCreate.when)}`)).includes(nsCreate.id));
      const bad = await admin.audit('since=yesterday');
      assert.deepEqual([bad.success, bad.errors[0]?.code], [false, 14009]);
    },
  );

  await t.test(
    "another account's audit log is answered 404 (code 7003), as if it did not exist",
    async () => {
      const other = await admin.call('GET', '/audit_logs', undefined, OTHER_ACCOUNT);
      assert.deepEqual([other.success, other.errors[0]?.code], [false, 7003]);
    },
  );

  await t.test('pubsub audit prints the log as a table; --token, --limit, --since and --json', async () => {
    const base = ['audit', '--data-dir', s.dataDir];
    const table = await runCli([...base, '--limit', '3']);
    assert.equal(table.code, 0, show(base, table));
    const rows = table.stdout.trimEnd().split('\n');
    assert.match(rows[0]!, /^WHEN\s+TOKEN\s+FROM\s+ACTION\s+OBJECT\s+STATUS\s+PATH$/);
    assert.equal(rows.length, 4, table.stdout);
    assert.match(rows[1]!, /create\s+namespace -\s+404 \(code 7003\)\s+POST /);
    assert.match(table.stderr, /3 of 12 entries/); // reads (the CLI's own, the refused GET) are not changes
    const mine = await runCli([...base, '--token', ci.id, '--since', '1h', '--json']);
    assert.equal(mine.code, 0, show(base, mine));
    assert.deepEqual(
      (JSON.parse(mine.stdout) as Entry[]).map((e) => e.id),
      [ciUpdate.id],
    );
  });
});

it('entries past --audit-retention are pruned from the store and never served', async (t) => {
  const { s, admin } = await serve(t, ['--audit-retention', '2s']);
  await admin.ok('POST', '/pubsub/namespaces', { name: 'short-lived' });
  const db = new DatabaseSync(join(s.dataDir, 'pubsub.db'), { readOnly: true });
  t.after(() => db.close());
  const rows = () => Number((db.prepare('SELECT count(*) AS n FROM audit_log').get() as { n: number }).n);
  assert.equal(rows(), 1);
  await until(() => rows() === 0, 'the entry to be pruned');
  assert.deepEqual((await admin.audit()).result, []);
});

describeWithTool('the audit log with curl', curl, () => {
  it('a change made with curl is read back with curl', async (t) => {
    const { s, admin } = await serve(t);
    const base = `${s.apiUrl}/client/v4/accounts/${s.accountId}`;
    const env = { ...process.env, TOKEN: admin.token, BASE: base };
    const sh = async (script: string) => JSON.parse((await run('bash', ['-c', script], { env })).stdout);
    const created = await sh(
      `curl -s -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" "$BASE/pubsub/namespaces" --data '{"name": "by-curl"}'`,
    );
    assert.equal(created.success, true, JSON.stringify(created));
    const log = await sh(
      `curl -s -H "Authorization: Bearer $TOKEN" "$BASE/audit_logs?action.type=create&per_page=1"`,
    );
    assert.equal(log.result_info.total_count, 1);
    assert.deepEqual(
      [log.result[0].resource, log.result[0].newValueJson.id],
      [{ type: 'namespace', id: 'by-curl' }, created.result.id],
    );
  });
});
