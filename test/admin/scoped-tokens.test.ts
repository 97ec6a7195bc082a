/**
 * Scoped admin API tokens and accounts, with fetch against a real server (issue 21): every
 * permission × every route of the route → permission table; read tokens cannot write, edit
 * tokens cannot make tokens, tokens:edit cannot grant more than it has; a token of account A
 * finds nothing of account B (404, as for an id that does not exist); expired and not-yet-valid
 * tokens are 403; `condition.request_ip` is honoured on the socket address and, behind
 * `--api-trust-proxy`, on X-Forwarded-For; `GET /user/tokens/verify` answers as Cloudflare's;
 * the operator creates, renames and deletes accounts, and deleting one disconnects its clients.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { ROUTE_PERMISSIONS } from '../../src/admin/route-permissions.ts';
import { until } from '../helpers/child-process.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

// biome-ignore lint/suspicious/noExplicitAny: API results are JSON read field by field by the assertions
type Result = any;

interface Answer {
  status: number;
  body: {
    success: boolean;
    result: Result;
    errors: { code: number; message: string }[];
    messages: unknown[];
  };
}

async function call(
  ts: TestServer,
  token: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const res = await fetch(`${ts.apiUrl}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...headers,
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as Answer['body'] };
}

function expectError(a: Answer, status: number, code: number, what = ''): void {
  assert.equal(a.status, status, `${what}: ${JSON.stringify(a.body)}`);
  assert.equal(a.body.success, false, what);
  assert.equal(a.body.result, null, what);
  assert.equal(a.body.errors[0]?.code, code, `${what}: ${JSON.stringify(a.body)}`);
}

function expectOk(a: Answer, what = ''): Result {
  assert.equal(a.status, 200, `${what}: ${JSON.stringify(a.body)}`);
  return a.body.result;
}

/** Creates a token in `account` with the operator token; resolves with its secret and object. */
async function token(
  ts: TestServer,
  account: string,
  grant: Record<string, unknown>,
  creator = ts.adminToken,
): Promise<{ secret: string; id: string; object: Result }> {
  const created = expectOk(
    await call(ts, creator, 'POST', `/client/v4/accounts/${account}/tokens`, { name: 'test', ...grant }),
    JSON.stringify(grant),
  );
  return { secret: created.value, id: created.id, object: created };
}

const inSeconds = (s: number): string => new Date(Date.now() + s * 1000).toISOString();

describe('scoped API tokens against a real server', () => {
  let ts: TestServer;
  let a: string;
  let b: string;
  const tokens: Record<string, string> = {};

  before(async () => {
    ts = await startServer({ httpPort: 0 });
    a = ts.accountId;
    b = expectOk(await call(ts, ts.adminToken, 'POST', '/client/v4/accounts', { name: 'customer b' })).id;
    const op = ts.adminToken;
    expectOk(await call(ts, op, 'POST', `/client/v4/accounts/${b}/pubsub/namespaces`, { name: 'bns' }));
    expectOk(
      await call(ts, op, 'POST', `/client/v4/accounts/${b}/pubsub/namespaces/bns/brokers`, { name: 'bbr' }),
    );
    expectOk(await call(ts, op, 'POST', `/client/v4/accounts/${a}/pubsub/namespaces`, { name: 'scope-ns' }));
    for (const name of ['one', 'two'])
      expectOk(
        await call(ts, op, 'POST', `/client/v4/accounts/${a}/pubsub/namespaces/scope-ns/brokers`, { name }),
      );
    tokens.operator = op;
    for (const p of ['pubsub:read', 'pubsub:edit', 'tokens:edit'])
      tokens[p] = (await token(ts, a, { permissions: [p] })).secret;
  });
  after(() => ts.close());

  const includes: Record<string, string[]> = {
    'pubsub:read': ['pubsub:read'],
    'pubsub:edit': ['pubsub:edit', 'pubsub:read'],
    'tokens:edit': ['tokens:edit'],
    operator: ['pubsub:read', 'pubsub:edit', 'tokens:edit', 'operator'],
  };

  it('every permission × every route: allowed exactly where the table says, else 403 (9109) in the envelope', async () => {
    let checked = 0;
    for (const [route, access] of Object.entries(ROUTE_PERMISSIONS)) {
      const [method, pattern] = route.split(' ') as [string, string];
      if (access === 'public' || method === 'HEAD') continue;
      const path = pattern
        .replace(':account_id', a)
        .replace(':namespace', 'absent-ns')
        .replace(':broker', 'absent-broker')
        .replace(':token_id', '0'.repeat(32))
        .replace(':client_id', 'nobody')
        .replace(':topic', 'nothing');
      const body =
        method === 'GET' || method === 'DELETE'
          ? undefined
          : pattern.endsWith('/tokens')
            ? { name: 'table', permissions: ['tokens:edit'] }
            : pattern.endsWith('/function')
              ? { code: 'export default () => {}' }
              : { name: `table-${checked}` };
      for (const [kind, secret] of Object.entries(tokens)) {
        const allowed = access === 'token' || includes[kind]!.includes(access);
        const answer = await call(ts, secret, method, path, body);
        const what = `${kind} ${route}`;
        if (allowed) assert.notEqual(answer.status, 403, `${what}: ${JSON.stringify(answer.body)}`);
        else expectError(answer, 403, 9109, what);
        checked++;
      }
    }
    const routes = Object.entries(ROUTE_PERMISSIONS).filter(
      ([r, x]) => x !== 'public' && !r.startsWith('HEAD '),
    );
    assert.equal(checked, routes.length * 4);
  });

  it('a read token reads but cannot write: 403 (9109) in the envelope, nothing changed', async () => {
    const read = tokens['pubsub:read']!;
    const listed = expectOk(await call(ts, read, 'GET', `/client/v4/accounts/${a}/pubsub/namespaces`));
    assert.ok(listed.some((n: { name: string }) => n.name === 'scope-ns'));
    const refused = await call(ts, read, 'POST', `/client/v4/accounts/${a}/pubsub/namespaces`, {
      name: 'nope',
    });
    expectError(refused, 403, 9109);
    assert.match(refused.body.errors[0]!.message, /lacks the pubsub:edit permission/);
    expectError(
      await call(
        ts,
        read,
        'GET',
        `/client/v4/accounts/${a}/pubsub/namespaces/scope-ns/brokers/one/credentials`,
      ),
      403,
      9109,
      'minting credentials is a write even as a GET',
    );
    expectError(
      await call(ts, ts.adminToken, 'GET', `/client/v4/accounts/${a}/pubsub/namespaces/nope`),
      404,
      14003,
    );
  });

  it('an edit token cannot make tokens; tokens:edit cannot grant more than it has', async () => {
    expectError(
      await call(ts, tokens['pubsub:edit']!, 'POST', `/client/v4/accounts/${a}/tokens`, { name: 'x' }),
      403,
      9109,
    );
    const maker = tokens['tokens:edit']!;
    for (const permissions of [['pubsub:read'], ['operator'], ['tokens:edit', 'pubsub:edit']])
      expectError(
        await call(ts, maker, 'POST', `/client/v4/accounts/${a}/tokens`, { name: 'x', permissions }),
        403,
        9109,
        permissions.join(),
      );
    expectError(
      await call(ts, maker, 'POST', `/client/v4/accounts/${a}/tokens`, {
        name: 'x',
        permissions: ['tokens:edit'],
        resources: { accounts: [a, b] },
      }),
      403,
      9109,
      'another account',
    );
    // A limited maker's limits are inherited: expiry, namespaces and address ranges.
    const limited = await token(ts, a, {
      permissions: ['tokens:edit', 'pubsub:read'],
      expires_on: inSeconds(3600),
      resources: { namespaces: ['scope-ns'] },
      condition: { request_ip: { in: ['127.0.0.0/8'] } },
    });
    expectError(
      await call(ts, limited.secret, 'POST', `/client/v4/accounts/${a}/tokens`, {
        name: 'later',
        permissions: ['pubsub:read'],
        expires_on: inSeconds(7200),
      }),
      403,
      9109,
      'later expiry',
    );
    expectError(
      await call(ts, limited.secret, 'POST', `/client/v4/accounts/${a}/tokens`, {
        name: 'wider',
        permissions: ['pubsub:read'],
        condition: { request_ip: { in: ['0.0.0.0/0'] } },
      }),
      403,
      9109,
      'wider address range',
    );
    const child = expectOk(
      await call(ts, limited.secret, 'POST', `/client/v4/accounts/${a}/tokens`, {
        name: 'child',
        permissions: ['pubsub:read'],
      }),
    );
    assert.deepEqual(child.permissions, ['pubsub:read']);
    assert.deepEqual(child.resources, { accounts: [a], namespaces: ['scope-ns'] });
    assert.equal(child.expires_on, limited.object.expires_on);
    assert.deepEqual(child.condition, { request_ip: { in: ['127.0.0.0/8'] } });

    // Revocation follows the same rule: its own child yes, a wider token (the operator's) no.
    const operatorId = expectOk(await call(ts, ts.adminToken, 'GET', '/client/v4/user/tokens/verify')).id;
    expectError(
      await call(ts, limited.secret, 'DELETE', `/client/v4/accounts/${a}/tokens/${operatorId}`),
      403,
      9109,
      'revoking the operator token',
    );
    expectOk(await call(ts, limited.secret, 'DELETE', `/client/v4/accounts/${a}/tokens/${child.id}`));
    expectOk(await call(ts, ts.adminToken, 'GET', '/client/v4/user/tokens/verify'));
  });

  it("a token is read, replaced (name and grant) and rolled within its changer's grant; the old secret stops at once", async () => {
    const maker = await token(ts, a, {
      permissions: ['tokens:edit', 'pubsub:read'],
      resources: { namespaces: ['scope-ns'] },
    });
    const base = `/client/v4/accounts/${a}/tokens`;
    const child = expectOk(
      await call(ts, maker.secret, 'POST', base, { name: 'reader', permissions: ['pubsub:read'] }),
    );
    const got = expectOk(await call(ts, maker.secret, 'GET', `${base}/${child.id}`));
    assert.equal(got.name, 'reader');
    assert.equal(got.value, undefined, 'never the secret');

    // Replace: a new name and a narrower grant; the secret still works, within the new grant.
    const updated = expectOk(
      await call(ts, maker.secret, 'PUT', `${base}/${child.id}`, {
        name: 'renamed',
        permissions: ['pubsub:read'],
        resources: { brokers: ['one.scope-ns'] },
      }),
    );
    assert.deepEqual([updated.id, updated.name], [child.id, 'renamed']);
    assert.deepEqual(updated.resources, {
      accounts: [a],
      namespaces: ['scope-ns'],
      brokers: ['one.scope-ns'],
    });
    const brokers = `/client/v4/accounts/${a}/pubsub/namespaces/scope-ns/brokers`;
    expectOk(await call(ts, child.value, 'GET', `${brokers}/one`));
    expectError(await call(ts, child.value, 'GET', `${brokers}/two`), 404, 14006, 'outside the new grant');

    // Not wider than the changer, and never a token wider than it.
    expectError(
      await call(ts, maker.secret, 'PUT', `${base}/${child.id}`, { name: 'x', permissions: ['pubsub:edit'] }),
      403,
      9109,
      'widening past the changer',
    );
    const operatorId = expectOk(await call(ts, ts.adminToken, 'GET', '/client/v4/user/tokens/verify')).id;
    expectError(
      await call(ts, maker.secret, 'PUT', `${base}/${operatorId}`, {
        name: 'mine now',
        permissions: ['pubsub:read'],
      }),
      403,
      9109,
      "narrowing the operator's token",
    );
    expectError(
      await call(ts, maker.secret, 'PUT', `${base}/${operatorId}/value`),
      403,
      9109,
      "rolling the operator's",
    );
    expectError(
      await call(ts, maker.secret, 'PUT', `${base}/${'0'.repeat(32)}/value`),
      404,
      14008,
      'unknown id',
    );

    // Roll: a new secret once; the old one is refused at once, the new one works.
    const rolled = await call(ts, maker.secret, 'PUT', `${base}/${child.id}/value`, {});
    const secret = expectOk(rolled);
    assert.equal(typeof secret, 'string');
    assert.notEqual(secret, child.value);
    expectError(await call(ts, child.value, 'GET', `${brokers}/one`), 403, 10000, 'the old secret');
    expectOk(await call(ts, secret, 'GET', `${brokers}/one`));

    // The audit log has the update and the roll, never the new secret.
    const log = expectOk(
      await call(
        ts,
        ts.adminToken,
        'GET',
        `/client/v4/accounts/${a}/audit_logs?resource.type=token&per_page=1000`,
      ),
    ) as { action: { type: string }; resource: { id: string } }[];
    const mine = log.filter((e) => e.resource.id === child.id).map((e) => e.action.type);
    assert.ok(mine.includes('update') && mine.includes('roll'), JSON.stringify(mine));
    assert.ok(!JSON.stringify(log).includes(secret), 'the rolled secret is not in the audit log');
  });

  it('a token of account A finds nothing of account B: 404 exactly as for an id that does not exist', async () => {
    const absent = 'e'.repeat(32);
    for (const [kind, secret] of Object.entries(tokens)) {
      if (kind === 'operator') continue;
      for (const suffix of [
        '',
        '/pubsub/namespaces',
        '/pubsub/namespaces/bns',
        '/pubsub/namespaces/bns/brokers/bbr',
        '/tokens',
      ]) {
        const theirs = await call(ts, secret, 'GET', `/client/v4/accounts/${b}${suffix}`);
        const nobody = await call(ts, secret, 'GET', `/client/v4/accounts/${absent}${suffix}`);
        if (nobody.status === 403) {
          expectError(theirs, 403, 9109, `${kind} ${suffix}: refused by permission before scope`);
          continue;
        }
        expectError(theirs, 404, 7003, `${kind} GET B${suffix}`);
        assert.equal(
          JSON.stringify(theirs.body).replaceAll(b, 'X'),
          JSON.stringify(nobody.body).replaceAll(absent, 'X'),
          'the same answer as for a missing account',
        );
      }
      const listed = expectOk(await call(ts, secret, 'GET', '/client/v4/accounts'));
      assert.deepEqual(
        listed.map((x: { id: string }) => x.id),
        [a],
        kind,
      );
    }
    const edit = tokens['pubsub:edit']!;
    expectError(
      await call(ts, edit, 'DELETE', `/client/v4/accounts/${b}/pubsub/namespaces/bns?cascade=true`),
      404,
      7003,
    );
    expectOk(
      await call(ts, ts.adminToken, 'GET', `/client/v4/accounts/${b}/pubsub/namespaces/bns/brokers/bbr`),
    );
  });

  it('namespace and broker limits: other namespaces and brokers are not found, lists show only the allowed', async () => {
    const ns = await token(ts, a, { permissions: ['pubsub:edit'], resources: { namespaces: ['scope-ns'] } });
    const names = expectOk(await call(ts, ns.secret, 'GET', `/client/v4/accounts/${a}/pubsub/namespaces`));
    assert.deepEqual(
      names.map((n: { name: string }) => n.name),
      ['scope-ns'],
    );
    expectError(
      await call(ts, ns.secret, 'GET', `/client/v4/accounts/${a}/pubsub/namespaces/local`),
      404,
      14003,
    );
    expectError(
      await call(ts, ns.secret, 'POST', `/client/v4/accounts/${a}/pubsub/namespaces`, { name: 'elsewhere' }),
      403,
      9109,
    );
    const br = await token(ts, a, { permissions: ['pubsub:read'], resources: { brokers: ['one.scope-ns'] } });
    const brokers = expectOk(
      await call(ts, br.secret, 'GET', `/client/v4/accounts/${a}/pubsub/namespaces/scope-ns/brokers`),
    );
    assert.deepEqual(
      brokers.map((x: { name: string }) => x.name),
      ['one'],
    );
    expectError(
      await call(ts, br.secret, 'GET', `/client/v4/accounts/${a}/pubsub/namespaces/scope-ns/brokers/two`),
      404,
      14006,
    );
    expectOk(
      await call(ts, br.secret, 'GET', `/client/v4/accounts/${a}/pubsub/namespaces/scope-ns/brokers/one`),
    );
  });

  it('an expired token and a not-yet-valid one are 403 (10000); the token list shows their status', async () => {
    const soon = await token(ts, a, { permissions: ['pubsub:read'], expires_on: inSeconds(1) });
    const later = await token(ts, a, { permissions: ['pubsub:read'], not_before: inSeconds(3600) });
    const path = `/client/v4/accounts/${a}/pubsub/namespaces`;
    expectError(await call(ts, later.secret, 'GET', path), 403, 10000, 'not yet valid');
    expectError(await call(ts, later.secret, 'GET', '/client/v4/user/tokens/verify'), 403, 10000);
    await until(async () => (await call(ts, soon.secret, 'GET', path)).status === 403, 'the token to expire');
    expectError(await call(ts, soon.secret, 'GET', path), 403, 10000, 'expired');
    const list = expectOk(await call(ts, ts.adminToken, 'GET', `/client/v4/accounts/${a}/tokens`));
    assert.equal(list.find((t: { id: string }) => t.id === soon.id).status, 'expired');
    assert.equal(list.find((t: { id: string }) => t.id === later.id).status, 'disabled');
    assert.ok(
      list.every((t: { value?: string }) => t.value === undefined),
      'no secret in a list',
    );
  });

  it("GET /client/v4/user/tokens/verify answers as Cloudflare's: id, status active, expires_on", async () => {
    const t = await token(ts, a, { permissions: ['pubsub:read'], expires_on: '2099-01-01T00:00:00Z' });
    for (const path of ['/client/v4/user/tokens/verify', `/client/v4/accounts/${a}/tokens/verify`]) {
      const answer = await call(ts, t.secret, 'GET', path);
      assert.equal(answer.status, 200);
      assert.deepEqual(answer.body.result, {
        id: t.id,
        status: 'active',
        expires_on: '2099-01-01T00:00:00Z',
      });
      assert.deepEqual(answer.body.messages, [
        { code: 10000, message: 'This API Token is valid and active', type: null },
      ]);
    }
    expectError(await call(ts, 'wrong', 'GET', '/client/v4/user/tokens/verify'), 403, 10000);
  });

  it('condition.request_ip is checked on the socket address; X-Forwarded-For is ignored without --api-trust-proxy', async () => {
    const path = `/client/v4/accounts/${a}/pubsub/namespaces`;
    const tenNet = await token(ts, a, {
      permissions: ['pubsub:read'],
      condition: { request_ip: { in: ['10.0.0.0/8'] } },
    });
    const loop = await token(ts, a, {
      permissions: ['pubsub:read'],
      condition: { request_ip: { in: ['127.0.0.0/8'] } },
    });
    const notLoop = await token(ts, a, {
      permissions: ['pubsub:read'],
      condition: { request_ip: { not_in: ['127.0.0.1/32'] } },
    });
    expectError(await call(ts, tenNet.secret, 'GET', path), 403, 9109, 'outside in');
    expectError(
      await call(ts, tenNet.secret, 'GET', path, undefined, { 'x-forwarded-for': '10.1.2.3' }),
      403,
      9109,
    );
    expectOk(await call(ts, loop.secret, 'GET', path));
    expectError(await call(ts, notLoop.secret, 'GET', path), 403, 9109, 'inside not_in');
    expectError(
      await call(ts, ts.adminToken, 'POST', `/client/v4/accounts/${a}/tokens`, {
        name: 'bad',
        condition: { request_ip: { in: ['10.0.0.0/33'] } },
      }),
      400,
      14009,
    );
  });

  it('the operator creates, lists, renames and deletes accounts; deleting one disconnects its clients and revokes its tokens', async () => {
    const op = ts.adminToken;
    const c = expectOk(await call(ts, op, 'POST', '/client/v4/accounts', { name: 'customer c' }));
    assert.match(c.id, /^[0-9a-f]{32}$/);
    const all = expectOk(await call(ts, op, 'GET', '/client/v4/accounts'));
    assert.deepEqual(
      all.map((x: { id: string }) => x.id).sort(),
      ts.server.tenancy.accounts.map((x) => x.id).sort(),
    );
    for (const id of [a, b, c.id]) assert.ok(all.some((x: { id: string }) => x.id === id));
    assert.equal(
      expectOk(await call(ts, op, 'PATCH', `/client/v4/accounts/${c.id}`, { name: 'renamed' })).name,
      'renamed',
    );
    assert.equal(
      expectOk(await call(ts, op, 'PUT', `/client/v4/accounts/${c.id}`, { name: 'again' })).name,
      'again',
    );
    expectOk(await call(ts, op, 'POST', `/client/v4/accounts/${c.id}/pubsub/namespaces`, { name: 'cns' }));
    expectOk(
      await call(ts, op, 'POST', `/client/v4/accounts/${c.id}/pubsub/namespaces/cns/brokers`, {
        name: 'cbr',
        authType: 'NONE',
      }),
    );
    const cToken = await token(ts, c.id, { permissions: ['pubsub:read'] });
    expectOk(await call(ts, cToken.secret, 'GET', `/client/v4/accounts/${c.id}/pubsub/namespaces`));
    const client = await mqtt.connectAsync(ts.url, {
      username: 'x@cbr.cns',
      protocolVersion: 5,
      reconnectPeriod: 0,
    });
    let reason: number | undefined;
    client.on('disconnect', (packet) => {
      reason = packet.reasonCode;
    });
    expectError(await call(ts, tokens['pubsub:edit']!, 'DELETE', `/client/v4/accounts/${c.id}`), 403, 9109);
    expectError(await call(ts, op, 'DELETE', `/client/v4/accounts/${a}`), 400, 14009, 'its own account');
    expectOk(await call(ts, op, 'DELETE', `/client/v4/accounts/${c.id}`));
    await until(() => !client.connected, 'the client of the deleted account to be disconnected');
    assert.equal(reason, 0x98, 'DISCONNECT 0x98 (administrative action)');
    client.end(true);
    expectError(await call(ts, cToken.secret, 'GET', '/client/v4/user/tokens/verify'), 403, 10000);
    expectError(await call(ts, op, 'GET', `/client/v4/accounts/${c.id}`), 404, 7003);
    expectError(
      await call(ts, tokens['pubsub:read']!, 'POST', '/client/v4/accounts', { name: 'x' }),
      403,
      9109,
    );
    // The deleted account's namespace name is free again.
    expectOk(await call(ts, op, 'POST', `/client/v4/accounts/${a}/pubsub/namespaces`, { name: 'cns' }));
  });
});

describe('condition.request_ip behind --api-trust-proxy', () => {
  let ts: TestServer;
  let ten: string;
  before(async () => {
    ts = await startServer({ httpPort: 0, apiTrustProxy: '127.0.0.1/32,192.168.0.0/16' });
    ten = (
      await token(ts, ts.accountId, {
        permissions: ['pubsub:read'],
        condition: { request_ip: { in: ['10.0.0.0/8'] } },
      })
    ).secret;
  });
  after(() => ts.close());

  it('the forwarded address of a trusted proxy counts, right to left past trusted proxies; a client claim left of it does not', async () => {
    const path = `/client/v4/accounts/${ts.accountId}/pubsub/namespaces`;
    const via = (xff: string | undefined) =>
      call(ts, ten, 'GET', path, undefined, xff === undefined ? {} : { 'x-forwarded-for': xff });
    expectError(await via(undefined), 403, 9109, 'the proxy itself');
    expectOk(await via('10.1.2.3'), 'one proxy');
    expectOk(await via('10.1.2.3, 192.168.1.1'), 'two trusted proxies');
    expectError(await via('10.1.2.3, 203.0.113.9'), 403, 9109, 'a claim left of an untrusted client');
    expectError(await via('not-an-address'), 403, 9109, 'a malformed entry');
  });
});
