/**
 * The route → permission table is the only place a route's permission is decided: every route
 * fastify registers is in it (a new route without an entry fails here, and is refused to every
 * token meanwhile), and every entry names a registered route (no stale rows).
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import Fastify from 'fastify';
import { checkAccess } from '../../src/admin/access.ts';
import { ROUTE_PERMISSIONS, routeAccess } from '../../src/admin/route-permissions.ts';
import type { ApiError } from '../../src/errors.ts';
import { type ApiFixture, apiFixture } from '../helpers/api-fixture.ts';

let f: ApiFixture;
before(async () => {
  f = await apiFixture();
});
after(() => f.close());

it('every registered route has an entry in the route → permission table', () => {
  const missing = f.app.registeredRoutes
    .filter((r) => routeAccess(r.method, r.url) === undefined)
    .map((r) => `${r.method} ${r.url}`);
  assert.deepEqual(missing, []);
});

it('every entry of the table is a registered route', () => {
  const registered = new Set(f.app.registeredRoutes.map((r) => `${r.method} ${r.url}`));
  assert.deepEqual(
    Object.keys(ROUTE_PERMISSIONS).filter((route) => !registered.has(route)),
    [],
  );
});

it('a route missing from the table is refused (403, 9109) even to the operator token; HEAD follows its GET', async () => {
  const app = Fastify();
  app.decorateRequest('apiToken', null);
  app.decorateRequest('routePermission', null);
  app.decorateRequest('clientAddress', '');
  app.addHook('onRequest', async (req) => checkAccess(f.tenancy, req));
  app.setErrorHandler((err, _req, reply) => {
    const apiError = err as ApiError;
    return reply.code(apiError.status).send(apiError.toJSON());
  });
  app.get('/client/v4/unlisted', async () => 'reached');
  app.get('/client/v4/accounts', async (req) => req.routePermission);
  const auth = { authorization: `Bearer ${f.token}` };
  const unlisted = await app.inject({ url: '/client/v4/unlisted', headers: auth });
  assert.equal(unlisted.statusCode, 403, unlisted.body);
  assert.equal(unlisted.json().code, 9109);
  const listed = await app.inject({ method: 'HEAD', url: '/client/v4/accounts', headers: auth });
  assert.equal(listed.statusCode, 200);
  assert.equal((await app.inject({ url: '/client/v4/accounts', headers: auth })).body, 'token');
  await app.close();
});
