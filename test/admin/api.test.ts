/**
 * The admin REST API through fastify's inject: every route of the Cloudflare Pub/Sub reference,
 * the envelope, authentication, and each kind of bad input with its status and error code; and
 * the webhook egress policy as the API applies it to `on_publish.url` (inject only: no listener,
 * so a fixture may say `host: 0.0.0.0` without binding it).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { type ApiFixture, apiFixture } from '../helpers/api-fixture.ts';
import { fakeResolver } from '../helpers/hosts.ts';
import { captureLog } from '../helpers/log-capture.ts';

describe('admin API', () => {
  let f: ApiFixture;
  let base: string;
  const call = (
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
    url: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<LightMyRequestResponse> =>
    f.app.inject({
      method,
      url,
      headers: {
        authorization: `Bearer ${f.token}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...headers,
      },
      ...(body !== undefined ? { payload: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
  const expectError = (res: LightMyRequestResponse, status: number, code: number): string => {
    assert.equal(res.statusCode, status, res.body);
    const env = res.json();
    assert.equal(env.success, false);
    assert.equal(env.result, null);
    assert.deepEqual(env.messages, []);
    assert.equal(env.errors.length, 1);
    assert.equal(env.errors[0].code, code, res.body);
    assert.equal(typeof env.errors[0].message, 'string');
    return env.errors[0].message as string;
  };

  before(async () => {
    f = await apiFixture();
    base = `/client/v4/accounts/${f.accountId}/pubsub`;
  });
  after(() => f.close());

  describe('accounts and authentication', () => {
    it('GET /client/v4/accounts lists the token account, in a list envelope', async () => {
      const res = await call('GET', '/client/v4/accounts');
      assert.equal(res.statusCode, 200);
      const env = res.json();
      assert.equal(env.success, true);
      assert.deepEqual(env.errors, []);
      assert.equal(env.result.length, 1);
      assert.equal(env.result[0].id, f.accountId);
      assert.equal(env.result_info.total_count, 1);
    });

    it('a missing token is 403 with code 10000', async () => {
      const res = await f.app.inject({ method: 'GET', url: `${base}/namespaces` });
      assert.match(expectError(res, 403, 10000), /missing credentials/);
    });

    it('a wrong bearer token is 403 with code 10000', async () => {
      const res = await call('GET', `${base}/namespaces`, undefined, { authorization: 'Bearer pubsub_nope' });
      assert.match(expectError(res, 403, 10000), /invalid API token/);
    });

    it('the legacy X-Auth-Email + X-Auth-Key pair authenticates', async () => {
      const res = await f.app.inject({
        method: 'GET',
        url: `${base}/namespaces`,
        headers: { 'x-auth-email': 'ops@example.com', 'x-auth-key': f.token },
      });
      assert.equal(res.statusCode, 200, res.body);
    });

    it('X-Auth-Key without X-Auth-Email is refused (403)', async () => {
      const res = await f.app.inject({
        method: 'GET',
        url: `${base}/namespaces`,
        headers: { 'x-auth-key': f.token },
      });
      expectError(res, 403, 10000);
    });

    it('a malformed account id and a well-formed unknown one are both 404 (7003)', async () => {
      expectError(await call('GET', '/client/v4/accounts/not-an-id/pubsub/namespaces'), 404, 7003);
      expectError(await call('GET', `/client/v4/accounts/${'0'.repeat(32)}/pubsub/namespaces`), 404, 7003);
    });

    it('an unknown route is 404 (7000) in the envelope', async () => {
      expectError(await call('GET', `${base}/nothing-here`), 404, 7000);
    });

    it('health and readiness answer without a token; openapi.json lists every route', async () => {
      assert.equal((await f.app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
      assert.deepEqual((await f.app.inject({ method: 'GET', url: '/readyz' })).json(), {
        status: 'ready',
        checks: { listeners: 'ok', store: 'ok' },
      });
      assert.equal((await f.app.inject({ method: 'GET', url: '/livez' })).statusCode, 200);
      const doc = (await f.app.inject({ method: 'GET', url: '/openapi.json' })).json();
      assert.equal(doc.openapi, '3.1.0');
      const paths = Object.keys(doc.paths);
      for (const p of [
        '/client/v4/accounts',
        '/client/v4/accounts/{account_id}/tokens',
        '/client/v4/accounts/{account_id}/tokens/{token_id}',
        '/client/v4/accounts/{account_id}/pubsub/namespaces',
        '/client/v4/accounts/{account_id}/pubsub/namespaces/{namespace}',
        '/client/v4/accounts/{account_id}/pubsub/namespaces/{namespace}/brokers',
        '/client/v4/accounts/{account_id}/pubsub/namespaces/{namespace}/brokers/{broker}',
        '/healthz',
        '/livez',
        '/readyz',
      ])
        assert.ok(paths.includes(p), `openapi lacks ${p}`);
    });
  });

  describe('namespaces', () => {
    it('the first start created namespace local', async () => {
      const env = (await call('GET', `${base}/namespaces/local`)).json();
      assert.equal(env.result.name, 'local');
    });

    it('create returns the Cloudflare namespace object (32-hex id, microsecond timestamps)', async () => {
      const res = await call('POST', `${base}/namespaces`, { name: 'My-Namespace', description: 'team a' });
      assert.equal(res.statusCode, 200, res.body);
      const ns = res.json().result;
      assert.match(ns.id, /^[0-9a-f]{32}$/);
      assert.equal(ns.name, 'my-namespace', 'names are case-insensitive, stored lower-cased');
      assert.equal(ns.description, 'team a');
      assert.match(ns.created_on, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
      assert.equal(ns.modified_on, ns.created_on);
    });

    it('describe and list find it whatever the case', async () => {
      assert.equal((await call('GET', `${base}/namespaces/MY-NAMESPACE`)).json().result.name, 'my-namespace');
      const env = (await call('GET', `${base}/namespaces`)).json();
      assert.ok(env.result.some((n: { name: string }) => n.name === 'my-namespace'));
      assert.equal(env.result_info.count, env.result.length);
    });

    it('page and per_page out of range or not numbers are 400', async () => {
      expectError(await call('GET', `${base}/namespaces?per_page=0`), 400, 14009);
      expectError(await call('GET', `${base}/namespaces?per_page=5000`), 400, 14009);
      expectError(await call('GET', `${base}/namespaces?page=two`), 400, 6009);
    });

    it('list pages with page and per_page', async () => {
      await call('POST', `${base}/namespaces`, { name: 'paged-a' });
      await call('POST', `${base}/namespaces`, { name: 'paged-b' });
      const env = (await call('GET', `${base}/namespaces?per_page=1&page=2`)).json();
      assert.equal(env.result.length, 1);
      assert.equal(env.result_info.page, 2);
      assert.equal(env.result_info.per_page, 1);
      assert.ok(env.result_info.total_pages >= 3);
    });

    it('a duplicate name (any case) is 409 (14002)', async () => {
      expectError(await call('POST', `${base}/namespaces`, { name: 'MY-namespace' }), 409, 14002);
    });

    for (const bad of ['', '1abc', 'has_underscore', 'ends-', 'a'.repeat(64), 'dots.in.it', 'ünï'])
      it(`an invalid name ${JSON.stringify(bad)} is 400`, async () => {
        const res = await call('POST', `${base}/namespaces`, { name: bad });
        assert.equal(res.statusCode, 400, res.body);
        assert.ok([14001, 6009].includes(res.json().errors[0].code));
      });

    it('a missing name or a non-object body fails validation (400, 6009)', async () => {
      expectError(await call('POST', `${base}/namespaces`, {}), 400, 6009);
      expectError(await call('POST', `${base}/namespaces`, '[1,2]'), 400, 6009);
      expectError(await call('POST', `${base}/namespaces`, { name: 'ok-name', description: 7 }), 400, 6009);
    });

    it('malformed JSON is 400 (6007)', async () => {
      expectError(await call('POST', `${base}/namespaces`, '{"name": '), 400, 6007);
    });

    it('a body that is not JSON is 415 (6003)', async () => {
      expectError(
        await call('POST', `${base}/namespaces`, 'name: x', { 'content-type': 'text/plain' }),
        415,
        6003,
      );
      const form = await f.app.inject({
        method: 'POST',
        url: `${base}/namespaces`,
        headers: { authorization: `Bearer ${f.token}`, 'content-type': 'application/x-www-form-urlencoded' },
        payload: 'name=x',
      });
      expectError(form, 415, 6003);
      // JavaScript is a body only the function deploy route reads.
      for (const type of ['application/javascript', 'text/javascript'])
        expectError(
          await call('PATCH', `${base}/namespaces/local/brokers/default`, 'whatever', {
            'content-type': type,
          }),
          415,
          6003,
        );
    });

    it('an oversized body is 413 (6008)', async () => {
      const res = await call('POST', `${base}/namespaces`, { name: 'big', description: 'x'.repeat(70_000) });
      expectError(res, 413, 6008);
    });

    it('an unknown namespace is 404 (14003)', async () => {
      expectError(await call('GET', `${base}/namespaces/nope`), 404, 14003);
      expectError(await call('GET', `${base}/namespaces/nope/brokers`), 404, 14003);
      expectError(await call('DELETE', `${base}/namespaces/nope`), 404, 14003);
    });

    it('delete returns null and frees the name', async () => {
      await call('POST', `${base}/namespaces`, { name: 'short-lived' });
      const res = await call('DELETE', `${base}/namespaces/short-lived`);
      assert.equal(res.statusCode, 200);
      assert.equal(res.json().result, null);
      assert.equal((await call('POST', `${base}/namespaces`, { name: 'short-lived' })).statusCode, 200);
    });

    it('deleting a namespace with brokers is refused (409, 14004) unless cascade=true', async () => {
      await call('POST', `${base}/namespaces`, { name: 'busy' });
      await call('POST', `${base}/namespaces/busy/brokers`, { name: 'b1' });
      assert.match(expectError(await call('DELETE', `${base}/namespaces/busy`), 409, 14004), /cascade=true/);
      assert.equal((await call('DELETE', `${base}/namespaces/busy?cascade=true`)).statusCode, 200);
      expectError(await call('GET', `${base}/namespaces/busy`), 404, 14003);
    });
  });

  describe('brokers', () => {
    before(async () => {
      await call('POST', `${base}/namespaces`, { name: 'fleet' });
    });

    it('create returns the broker object with authType and auth_type, expiration and endpoint', async () => {
      const res = await call('POST', `${base}/namespaces/fleet/brokers`, {
        name: 'Example-Broker',
        authType: 'TOKEN',
      });
      assert.equal(res.statusCode, 200, res.body);
      const b = res.json().result;
      assert.match(b.id, /^[0-9a-f]{32}$/);
      assert.equal(b.name, 'example-broker');
      assert.equal(b.authType, 'TOKEN');
      assert.equal(b.auth_type, 'TOKEN');
      assert.equal(b.expiration, null);
      assert.equal(b.endpoint, 'mqtts://example-broker.fleet.localhost:8883');
      assert.equal(b.endpoints.ws, 'ws://example-broker.fleet.localhost:8083/mqtt');
      assert.equal(b.mqtt_username, 'example-broker.fleet'); // names it without DNS
      assert.equal(b.on_publish, undefined);
    });

    it('auth_type is accepted on input; authType defaults to TOKEN', async () => {
      const a = (
        await call('POST', `${base}/namespaces/fleet/brokers`, { name: 'snake', auth_type: 'NONE' })
      ).json();
      assert.equal(a.result.authType, 'NONE');
      const b = (await call('POST', `${base}/namespaces/fleet/brokers`, { name: 'plain' })).json();
      assert.equal(b.result.authType, 'TOKEN');
      expectError(
        await call('POST', `${base}/namespaces/fleet/brokers`, {
          name: 'torn',
          authType: 'NONE',
          auth_type: 'TOKEN',
        }),
        400,
        14009,
      );
      expectError(
        await call('POST', `${base}/namespaces/fleet/brokers`, { name: 'weird', authType: 'PASSWORD' }),
        400,
        6009,
      );
    });

    it('broker names are unique per namespace (409, 14005) but may repeat across namespaces', async () => {
      await call('POST', `${base}/namespaces/fleet/brokers`, { name: 'dup' });
      expectError(await call('POST', `${base}/namespaces/fleet/brokers`, { name: 'DUP' }), 409, 14005);
      await call('POST', `${base}/namespaces`, { name: 'fleet-two' });
      assert.equal(
        (await call('POST', `${base}/namespaces/fleet-two/brokers`, { name: 'dup' })).statusCode,
        200,
      );
    });

    it('expiration and on_publish are stored and shown', async () => {
      const res = await call('POST', `${base}/namespaces/fleet/brokers`, {
        name: 'hooked',
        description: 'with a hook',
        expiration: 86400,
        on_publish: { url: 'https://hooks.example.com/pubsub' },
      });
      const b = res.json().result;
      assert.equal(b.expiration, 86400);
      assert.deepEqual(b.on_publish, {
        url: 'https://hooks.example.com/pubsub',
        policy: 'fail-closed',
        timeout_ms: null,
      });
      assert.equal(b.description, 'with a hook');
    });

    it('PATCH changes only the fields given; null clears expiration and on_publish', async () => {
      const before = (await call('GET', `${base}/namespaces/fleet/brokers/hooked`)).json().result;
      const patched = (
        await call('PATCH', `${base}/namespaces/fleet/brokers/hooked`, { description: 'changed' })
      ).json().result;
      assert.equal(patched.description, 'changed');
      assert.equal(patched.expiration, 86400);
      assert.deepEqual(patched.on_publish, before.on_publish);
      assert.equal(patched.created_on, before.created_on);
      assert.ok(patched.modified_on >= before.modified_on);
      const cleared = (
        await call('PATCH', `${base}/namespaces/fleet/brokers/hooked`, {
          expiration: null,
          on_publish: { url: null },
        })
      ).json().result;
      assert.equal(cleared.expiration, null);
      assert.equal(cleared.on_publish, undefined);
    });

    it('a bad on_publish URL, policy or timeout, or a negative expiration is 400', async () => {
      expectError(
        await call('PATCH', `${base}/namespaces/fleet/brokers/hooked`, {
          on_publish: { policy: 'sometimes' },
        }),
        400,
        6009,
      );
      expectError(
        await call('PATCH', `${base}/namespaces/fleet/brokers/hooked`, { on_publish: { timeout_ms: 0 } }),
        400,
        6009,
      );
      const patched = (
        await call('PATCH', `${base}/namespaces/fleet/brokers/hooked`, {
          on_publish: { url: 'https://hooks.example.com/x', policy: 'fail-open', timeout_ms: 2500 },
        })
      ).json().result;
      assert.deepEqual(patched.on_publish, {
        url: 'https://hooks.example.com/x',
        policy: 'fail-open',
        timeout_ms: 2500,
      });
      expectError(
        await call('PATCH', `${base}/namespaces/fleet/brokers/hooked`, { on_publish: { url: 'not a url' } }),
        400,
        14009,
      );
      expectError(
        await call('PATCH', `${base}/namespaces/fleet/brokers/hooked`, {
          on_publish: { url: 'ftp://x.example' },
        }),
        400,
        14009,
      );
      expectError(
        await call('PATCH', `${base}/namespaces/fleet/brokers/hooked`, { expiration: -5 }),
        400,
        6009,
      );
    });

    it('list shows the namespace brokers with result_info', async () => {
      const env = (await call('GET', `${base}/namespaces/fleet/brokers`)).json();
      const names = env.result.map((b: { name: string }) => b.name);
      assert.ok(names.includes('example-broker') && names.includes('hooked'));
      assert.equal(env.result_info.total_count, names.length);
    });

    it('an unknown broker is 404 (14006) for GET, PATCH and DELETE', async () => {
      expectError(await call('GET', `${base}/namespaces/fleet/brokers/ghost`), 404, 14006);
      expectError(
        await call('PATCH', `${base}/namespaces/fleet/brokers/ghost`, { description: 'x' }),
        404,
        14006,
      );
      expectError(await call('DELETE', `${base}/namespaces/fleet/brokers/ghost`), 404, 14006);
    });

    it('delete returns null and removes the live broker', async () => {
      await call('POST', `${base}/namespaces/fleet/brokers`, { name: 'doomed' });
      const tenants = () => [...f.tenancy.tenants()].map((t) => t.record.name);
      assert.ok(tenants().includes('doomed'));
      const res = await call('DELETE', `${base}/namespaces/fleet/brokers/doomed`);
      assert.equal(res.json().result, null);
      assert.ok(!tenants().includes('doomed'));
    });
  });

  describe('admin API tokens', () => {
    it('create shows the secret once; the new token works; list hides secrets; revoke stops it', async () => {
      const created = (await call('POST', `/client/v4/accounts/${f.accountId}/tokens`, { name: 'ci' })).json()
        .result;
      assert.match(created.value, /^pubsub_/);
      const ok = await call('GET', `${base}/namespaces`, undefined, {
        authorization: `Bearer ${created.value}`,
      });
      assert.equal(ok.statusCode, 200);
      const listed = (await call('GET', `/client/v4/accounts/${f.accountId}/tokens`)).json().result;
      const entry = listed.find((t: { id: string }) => t.id === created.id);
      assert.equal(entry.name, 'ci');
      assert.equal(entry.value, undefined);
      assert.ok(entry.last_used_on !== null, 'last use recorded');
      assert.equal(
        (await call('DELETE', `/client/v4/accounts/${f.accountId}/tokens/${created.id}`)).statusCode,
        200,
      );
      const refused = await call('GET', `${base}/namespaces`, undefined, {
        authorization: `Bearer ${created.value}`,
      });
      expectError(refused, 403, 10000);
      expectError(
        await call('DELETE', `/client/v4/accounts/${f.accountId}/tokens/${created.id}`),
        404,
        14008,
      );
    });
  });
});

describe('admin API quotas', () => {
  it('namespace and broker quotas refuse with 400 (14007) and name the option', async () => {
    const f = await apiFixture({ maxNamespacesPerAccount: 2, maxBrokersPerNamespace: 1 });
    try {
      const base = `/client/v4/accounts/${f.accountId}/pubsub`;
      const headers = { authorization: `Bearer ${f.token}`, 'content-type': 'application/json' };
      const post = (url: string, body: unknown) =>
        f.app.inject({ method: 'POST', url, headers, payload: JSON.stringify(body) });
      assert.equal((await post(`${base}/namespaces`, { name: 'second' })).statusCode, 200);
      const over = await post(`${base}/namespaces`, { name: 'third' });
      assert.equal(over.statusCode, 400);
      assert.equal(over.json().errors[0].code, 14007);
      assert.match(over.json().errors[0].message, /max-namespaces-per-account/);
      assert.equal((await post(`${base}/namespaces/second/brokers`, { name: 'one' })).statusCode, 200);
      const overB = await post(`${base}/namespaces/second/brokers`, { name: 'two' });
      assert.equal(overB.json().errors[0].code, 14007);
    } finally {
      await f.close();
    }
  });
});

describe('on_publish.url and the webhook egress policy', () => {
  const hosts = fakeResolver({
    'intranet.test': ['10.20.30.40'],
    'mixed.test': ['192.0.2.7', 'fd00::7'],
    'public.test': ['192.0.2.8'],
    localhost: ['127.0.0.1', '::1'],
  });
  /** Creates a broker with `url`, and PATCHes the default broker to it; what it stored before and after. */
  const tryUrl = async (f: ApiFixture, url: string) => {
    const base = `/client/v4/accounts/${f.accountId}/pubsub/namespaces/local/brokers`;
    const headers = { authorization: `Bearer ${f.token}`, 'content-type': 'application/json' };
    const stored = async () =>
      (await f.app.inject({ method: 'GET', url: `${base}/default`, headers })).json().result.on_publish;
    const name = `b${Math.random().toString(36).slice(2, 10)}`;
    const created = await f.app.inject({
      method: 'POST',
      url: base,
      headers,
      payload: JSON.stringify({ name, on_publish: { url } }),
    });
    const before = await stored();
    const patched = await f.app.inject({
      method: 'PATCH',
      url: `${base}/default`,
      headers,
      payload: JSON.stringify({ on_publish: { url } }),
    });
    return { created, patched, before, after: await stored(), name };
  };
  const expectRefused = (res: LightMyRequestResponse, url: string): string => {
    assert.equal(res.statusCode, 400, `${url}: ${res.body}`);
    const env = res.json();
    assert.equal(env.success, false);
    assert.equal(env.result, null);
    assert.equal(env.errors[0].code, 14013, url);
    return env.errors[0].message as string;
  };
  const expectAccepted = async (f: ApiFixture, url: string) => {
    const { created, patched, after } = await tryUrl(f, url);
    assert.equal(created.statusCode, 200, `${url}: ${created.body}`);
    assert.equal(patched.statusCode, 200, `${url}: ${patched.body}`);
    assert.equal(after.url, url);
  };
  const expectAllRefused = async (f: ApiFixture, url: string): Promise<string> => {
    const { created, patched, before, after, name } = await tryUrl(f, url);
    const message = expectRefused(created, url);
    expectRefused(patched, url);
    assert.deepEqual(after, before, 'the default broker kept its hook');
    assert.ok(![...f.tenancy.tenants()].some((t) => t.record.name === name), 'no broker was created');
    return message;
  };

  it('the metadata service, an RFC 1918 and a ULA address are refused with 400 (14013) on create and update', async () => {
    const f = await apiFixture({}, { resolveHost: hosts.resolve });
    try {
      for (const url of ['http://169.254.169.254/', 'http://10.0.0.1/', 'http://[fd00::1]/'])
        assert.match(await expectAllRefused(f, url), /refused by the server's webhook egress policy/);
      for (const url of [
        'http://[::ffff:169.254.169.254]/latest/meta-data/',
        'http://[fd00:ec2::254]/',
        'http://172.16.0.1:8080/',
        'http://192.168.1.1/',
        'http://100.64.0.1/',
        'http://[fe80::1]/',
        'http://224.0.0.1/',
        'http://255.255.255.255/',
        'http://0.0.0.0:22/',
        'http://0x0a.1/',
        'http://167772161/',
      ])
        await expectAllRefused(f, url);
      await expectAccepted(f, 'https://public.test/hook');
      await expectAccepted(f, 'http://192.0.2.1:8080/hook');
    } finally {
      await f.close();
    }
  });

  it('a host name is resolved when set: one refused address refuses it, the tenant is not told which; the log is', async () => {
    const log = captureLog('warn');
    const f = await apiFixture({}, { resolveHost: hosts.resolve, logger: log.logger });
    try {
      const intranet = await expectAllRefused(f, 'https://intranet.test/hook');
      assert.doesNotMatch(intranet, /10\.20\.30\.40/, 'the resolved address stays internal');
      assert.match(intranet, /intranet\.test/);
      await expectAllRefused(f, 'https://mixed.test/hook');
      assert.match(await expectAllRefused(f, 'https://nowhere.test/hook'), /does not resolve/);
      assert.ok(hosts.asked.includes('intranet.test') && hosts.asked.includes('nowhere.test'));
      const logged = log.withMessage('on_publish.url refused');
      assert.ok(
        logged.some((l) => /intranet\.test: 10\.20\.30\.40 is private/.test(String(l.err))),
        JSON.stringify(logged),
      );
    } finally {
      await f.close();
    }
  });

  it('loopback is a target while the server binds loopback (the default), refused when it binds wider', async () => {
    const local = await apiFixture({}, { resolveHost: hosts.resolve });
    const wide = await apiFixture({ host: '0.0.0.0' }, { resolveHost: hosts.resolve });
    try {
      for (const url of ['http://127.0.0.1:9/hook', 'http://localhost:9/hook', 'http://[::1]:9/hook']) {
        await expectAccepted(local, url);
        await expectAllRefused(wide, url);
      }
      await expectAllRefused(wide, 'http://[::ffff:127.0.0.1]:9/hook');
      await expectAllRefused(local, 'http://0.0.0.0:9/hook');
      await expectAccepted(wide, 'https://public.test/hook');
    } finally {
      await local.close();
      await wide.close();
    }
  });

  it('the operator opens ranges: --hook-allow-private for private networks, --hook-allow-cidrs for exactly its own', async () => {
    const privateOk = await apiFixture({ hookAllowPrivate: true }, { resolveHost: hosts.resolve });
    const listed = await apiFixture(
      { host: '0.0.0.0', hookAllowCidrs: '169.254.169.254/32,10.1.0.0/16,127.0.0.1' },
      { resolveHost: hosts.resolve },
    );
    try {
      for (const url of [
        'http://10.0.0.1/',
        'http://[fd00::1]/',
        'http://100.64.0.1/',
        'https://intranet.test/',
      ])
        await expectAccepted(privateOk, url);
      for (const url of ['http://169.254.169.254/', 'http://[fd00:ec2::254]/', 'http://169.254.1.1/'])
        await expectAllRefused(privateOk, url);
      for (const url of ['http://169.254.169.254/', 'http://10.1.2.3/', 'http://127.0.0.1:9/'])
        await expectAccepted(listed, url);
      for (const url of ['http://10.2.0.1/', 'https://intranet.test/', 'http://[::1]:9/'])
        await expectAllRefused(listed, url);
    } finally {
      await privateOk.close();
      await listed.close();
    }
  });
});
