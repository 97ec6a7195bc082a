/**
 * Optional parts of the server load when first used, not at start (docs/performance.md, "Idle
 * footprint"): a module loader hook in the served process lists every module it loads, and the
 * list is read before and after the first request that needs each part.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { startServe, tempDir } from '../helpers/pubsub-process.ts';

const LOADER_HOOK = `
import { registerHooks } from 'node:module';
import { appendFileSync } from 'node:fs';
registerHooks({
  load(url, context, nextLoad) {
    appendFileSync(process.env.LOADED_MODULES_FILE, url + '\\n');
    return nextLoad(url, context);
  },
});
`;

const loadedPackages = (file: string): Set<string> => {
  const packages = new Set<string>();
  for (const url of readFileSync(file, 'utf8').split('\n')) {
    const match = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
    if (match !== null) packages.add(match[1]!);
  }
  return packages;
};

test('the OpenAPI generator, prom-client and jose are not loaded until first used', async (t) => {
  const dir = tempDir(t);
  const hook = join(dir, 'hook.mjs');
  const list = join(dir, 'loaded.txt');
  writeFileSync(hook, LOADER_HOOK);
  writeFileSync(list, '');
  const server = await startServe(t, {
    env: { NODE_OPTIONS: `--import ${pathToFileURL(hook).href}`, LOADED_MODULES_FILE: list },
  });
  const atStart = loadedPackages(list);
  assert.ok(atStart.has('fastify'), 'the hook sees the modules loaded at start');
  for (const name of ['@fastify/swagger', 'prom-client', 'jose'])
    assert.ok(!atStart.has(name), `${name} is loaded at start`);

  const openapi = await fetch(`${server.apiUrl}/openapi.json`);
  assert.equal(openapi.status, 200);
  assert.equal(((await openapi.json()) as { openapi: string }).openapi, '3.1.0');
  assert.ok(loadedPackages(list).has('@fastify/swagger'));

  const metrics = await fetch(`${server.apiUrl}/metrics`);
  assert.equal(metrics.status, 200);
  assert.match(await metrics.text(), /^# HELP /m);
  assert.ok(loadedPackages(list).has('prom-client'));
  await server.stop();
});
