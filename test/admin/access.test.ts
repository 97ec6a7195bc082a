/**
 * Deny by default, over the whole route table: every route the API registers (read from
 * fastify's onRoute events, so a route added later is covered without touching this file) is
 * called without a token, with a wrong token and with another account's token (which finds
 * nothing: 404, as for an account that does not exist), on its plain
 * path and on percent-encoded, mixed-case, doubled-slash, dot-segment and trailing-slash
 * variants. Each must refuse (403) and change nothing; only PUBLIC_ROUTES answer.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { PUBLIC_ROUTES } from '../../src/admin/access.ts';
import { routeAccess } from '../../src/admin/route-permissions.ts';
import { tenancyStores } from '../../src/store/index.ts';
import { type ApiFixture, apiFixture } from '../helpers/api-fixture.ts';

type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

interface Fixture extends ApiFixture {
  otherToken: string;
  otherAccountId: string;
}

/** The API with a second account beside the bootstrap one, holding its own admin token. */
async function fixture(): Promise<Fixture> {
  // Thousands of wrong tokens from one address: the brute-force limiter would ban it (its own
  // tests are test/auth/brute-force.test.ts).
  const f = await apiFixture({ authFailureLimit: 0 });
  const otherAccountId = 'f'.repeat(32);
  tenancyStores(f.db).controlPlane.createAccount({
    id: otherAccountId,
    name: 'other',
    createdOn: new Date().toISOString(),
  });
  const operator = f.tenancy.verifyApiToken(f.token)!;
  const other = f.tenancy.createApiToken(operator, otherAccountId, { name: 'other account admin' });
  return { ...f, otherToken: other.value, otherAccountId };
}

/** A concrete path for a route pattern: the real account, plausible names for the rest. */
function concrete(pattern: string, accountId: string): string {
  return pattern
    .replace(':account_id', accountId)
    .replace(':namespace', 'local')
    .replace(':broker', 'default')
    .replace(':token_id', '0'.repeat(32));
}

/** Spellings of one path that a router might read as the same route. */
function variants(path: string): Record<string, string> {
  const segments = path.split('/').slice(1);
  const encodeFirst = (s: string) =>
    s === '' ? s : `%${s.charCodeAt(0).toString(16).padStart(2, '0')}${s.slice(1)}`;
  const encodeAll = (s: string) =>
    [...s].map((c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`).join('');
  const mixCase = (s: string) =>
    [...s].map((c, i) => (i % 2 === 0 ? c.toUpperCase() : c.toLowerCase())).join('');
  return {
    plain: path,
    'first letter of each segment percent-encoded': `/${segments.map(encodeFirst).join('/')}`,
    'every byte percent-encoded': `/${segments.map(encodeAll).join('/')}`,
    'mixed case': `/${segments.map(mixCase).join('/')}`,
    'upper case': path.toUpperCase(),
    'leading doubled slash': `/${path}`,
    'doubled slashes': path.replaceAll('/', '//'),
    'trailing slash': `${path}/`,
    'dot segment': `/x/..${path}`,
    'encoded dot segment': `/x/%2e%2e${path}`,
    'encoded slash': path.replace('/v4/', '/v4%2F'),
    'query string': `${path}?account_id=${'0'.repeat(32)}`,
  };
}

function bodyFor(method: Method): { payload?: string; headers: Record<string, string> } {
  if (method === 'GET' || method === 'HEAD' || method === 'DELETE') return { headers: {} };
  return { payload: JSON.stringify({ name: 'intruder' }), headers: { 'content-type': 'application/json' } };
}

function assertRefused(
  res: LightMyRequestResponse,
  method: Method,
  what: string,
  code = 10000,
  status = 403,
): void {
  assert.equal(res.statusCode, status, `${what}: ${res.body}`);
  if (method === 'HEAD') return;
  const env = res.json();
  assert.equal(env.success, false, what);
  assert.equal(env.result, null, what);
  assert.equal(env.errors[0].code, code, `${what}: ${res.body}`);
}

describe('admin API access: deny by default over every registered route', () => {
  let f: Fixture;
  before(async () => {
    f = await fixture();
  });
  after(() => f.close());

  const routes = () => f.app.registeredRoutes.filter((r) => !PUBLIC_ROUTES.has(`${r.method} ${r.url}`));

  it('the route table is read from fastify and the public list is exactly the health, OpenAPI, metrics and web console routes', () => {
    assert.ok(routes().length >= 30, `only ${routes().length} protected routes registered`);
    const publicRegistered = f.app.registeredRoutes
      .filter((r) => PUBLIC_ROUTES.has(`${r.method} ${r.url}`))
      .map((r) => `${r.method} ${r.url}`)
      .sort();
    assert.deepEqual(publicRegistered, [...PUBLIC_ROUTES].sort());
  });

  it('every protected route, in every spelling, is 403 (code 10000) without a token or with a wrong one', async () => {
    const before = snapshot(f);
    let calls = 0;
    for (const route of routes()) {
      const method = route.method as Method;
      for (const [name, url] of Object.entries(variants(concrete(route.url, f.accountId)))) {
        for (const headers of [
          {},
          { authorization: 'Bearer not-a-token' },
          { authorization: '' },
          { 'x-auth-email': 'a@b.c', 'x-auth-key': 'wrong' },
        ]) {
          const body = bodyFor(method);
          const res = await f.app.inject({
            method,
            url,
            headers: { ...headers, ...body.headers },
            ...(body.payload !== undefined ? { payload: body.payload } : {}),
          });
          assertRefused(res, method, `${method} ${url} (${route.url}, ${name}, ${JSON.stringify(headers)})`);
          calls++;
        }
      }
    }
    assert.ok(calls > 1000);
    assert.deepEqual(snapshot(f), before, 'a refused request changed state');
  });

  it("another account's token finds nothing (404, code 7003) on every account route, in every spelling; operator routes are 403 (9109)", async () => {
    const before = snapshot(f);
    for (const route of routes().filter((r) => r.url.includes(':account_id'))) {
      const method = route.method as Method;
      for (const [name, url] of Object.entries(variants(concrete(route.url, f.accountId)))) {
        if (name.includes('dot') || name.includes('slash') || name.includes('case')) continue;
        const body = bodyFor(method);
        const res = await f.app.inject({
          method,
          url,
          headers: { authorization: `Bearer ${f.otherToken}`, ...body.headers },
          ...(body.payload !== undefined ? { payload: body.payload } : {}),
        });
        const operatorOnly = routeAccess(method, route.url) === 'operator';
        if (operatorOnly) assertRefused(res, method, `${method} ${url} (${name})`, 9109);
        else assertRefused(res, method, `${method} ${url} (${name})`, 7003, 404);
      }
    }
    assert.deepEqual(snapshot(f), before);
  });

  it('GET /client/v4/accounts shows a token only its own account (the operator every one), in every spelling', async () => {
    for (const url of ['/client/v4/accounts', '/%63lient/v4/accounts', '/client/v4/%61ccounts']) {
      const operator = await f.app.inject({ url, headers: { authorization: `Bearer ${f.token}` } });
      assert.deepEqual(
        operator
          .json()
          .result.map((a: { id: string }) => a.id)
          .sort(),
        [f.accountId, f.otherAccountId].sort(),
      );
      const theirs = await f.app.inject({ url, headers: { authorization: `Bearer ${f.otherToken}` } });
      assert.deepEqual(
        theirs.json().result.map((a: { id: string }) => a.id),
        [f.otherAccountId],
      );
    }
  });

  it('POST /%63lient/v4/accounts/<id>/tokens without a token mints nothing', async () => {
    const count = f.tenancy.listApiTokens(f.accountId).length;
    for (const url of [
      `/%63lient/v4/accounts/${f.accountId}/tokens`,
      `/%63%6C%69%65%6E%74/v4/accounts/${f.accountId}/tokens`,
      `/client/v4/accounts/${f.accountId}/%74okens`,
    ]) {
      const res = await f.app.inject({
        method: 'POST',
        url,
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify({ name: 'minted' }),
      });
      assertRefused(res, 'POST', url);
    }
    assert.equal(f.tenancy.listApiTokens(f.accountId).length, count);
  });

  // Dot segments never reach the router through inject (it resolves them like a URL parser);
  // access-curl.test.ts sends them as-is over a socket.
  it('with a valid token, ambiguous paths are 400 (code 7010) and decoded plain letters route as usual', async () => {
    const auth = { authorization: `Bearer ${f.token}` };
    for (const url of [
      '//client/v4/accounts',
      `/client/v4/accounts/${f.accountId}//pubsub/namespaces`,
      `/client/v4/accounts%2F${f.accountId}/pubsub/namespaces`,
      `/client/v4/accounts/${f.accountId}/pubsub%5cnamespaces`,
      `/client/v4/accounts/${f.accountId}%00/pubsub/namespaces`,
    ]) {
      const res = await f.app.inject({ url, headers: auth });
      assert.equal(res.statusCode, 400, `${url}: ${res.body}`);
      assert.equal(res.json().errors[0].code, 7010, url);
    }
    const res = await f.app.inject({
      url: `/%63lient/v4/accounts/${f.accountId}/pubsub/namespaces`,
      headers: auth,
    });
    assert.equal(res.statusCode, 200, res.body);
  });

  it('a path that is not valid percent-encoding is answered in the envelope (400, code 7010), with or without a token', async () => {
    for (const url of [
      '/%zz',
      '/client/v4/accounts/%c0%af',
      '/healthz%zz',
      `/client/v4/accounts/${f.accountId}/%E0%A4%A`,
    ]) {
      for (const headers of [{}, { authorization: `Bearer ${f.token}` }]) {
        const res = await f.app.inject({ url, headers });
        assert.equal(res.statusCode, 400, `${url}: ${res.body}`);
        const env = res.json();
        assert.equal(env.success, false);
        assert.equal(env.result, null);
        assert.equal(env.errors[0].code, 7010, url);
      }
    }
  });

  it('a route parameter over the router length limit is answered like no route: 403, then 404', async () => {
    for (const url of [`/client/v4/accounts/${'a'.repeat(120)}`, `/client/v4/nothing/${'a'.repeat(120)}`]) {
      assertRefused(await f.app.inject({ url }), 'GET', url);
      const known = await f.app.inject({ url, headers: { authorization: `Bearer ${f.token}` } });
      assert.equal(known.statusCode, 404, `${url}: ${known.body}`);
      assert.equal(known.json().errors[0].code, 7000);
    }
  });

  it('an unknown path is 403 without a token and 404 (code 7000) with one', async () => {
    const anonymous = await f.app.inject({ url: '/client/v4/nothing-here' });
    assertRefused(anonymous, 'GET', 'unknown path');
    const known = await f.app.inject({
      url: '/client/v4/nothing-here',
      headers: { authorization: `Bearer ${f.token}` },
    });
    assert.equal(known.statusCode, 404);
    assert.equal(known.json().errors[0].code, 7000);
  });

  it('public routes answer without a token', async () => {
    // The console's assets route takes the name of a built asset: the shell's entry script.
    const shell = await f.app.inject({ method: 'GET', url: '/' });
    const asset = /src="\/console\/assets\/([^"]+)"/.exec(shell.body)?.[1];
    assert.ok(asset, shell.body);
    for (const key of PUBLIC_ROUTES) {
      const [method, route] = key.split(' ') as [Method, string];
      const url: string = route.replace(':name', asset);
      const res = await f.app.inject({ method, url });
      assert.equal(res.statusCode, 200, `${key}: ${res.body}`);
    }
  });
});

/** What a successful intrusion would change: tokens, namespaces, brokers, keys, revocations. */
function snapshot(f: Fixture): unknown {
  const accounts = [f.accountId, f.otherAccountId];
  return accounts.map((a) => ({
    tokens: f.tenancy.listApiTokens(a).map((t) => t.id),
    namespaces: f.tenancy.listNamespaces(a, { page: 1, perPage: 1000 }).items.map((n) => ({
      name: n.name,
      brokers: f.tenancy.listBrokers(a, n.name, { page: 1, perPage: 1000 }).items.map((b) => ({
        b,
        keys: f.tenancy.publicKeys(a, n.name, b.name),
        revoked: f.tenancy.revocations(a, n.name, b.name),
        hook: f.tenancy.hookView(a, n.name, b.name),
      })),
    })),
  }));
}
