/**
 * Control-plane state survives a restart of a real `pubsub serve` process: the first start
 * bootstraps (token printed once, written 0600), namespaces and brokers created through the API
 * are there after SIGTERM and a new start, and their live brokers serve MQTT again.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it, type TestContext } from 'node:test';
import mqtt from 'mqtt';
import { CLI, cliEnvironment } from '../cli/run-cli.ts';
import { type Child, spawnChild } from '../interop/tools.ts';

interface Running {
  child: Child;
  apiUrl: string;
  wsUrl: string;
  /** The banner's token line, undefined when it printed none. */
  tokenLine: string | undefined;
}

async function start(t: TestContext, dataDir: string): Promise<Running> {
  const env = cliEnvironment();
  const child = spawnChild(
    t,
    process.execPath,
    [
      CLI,
      'serve',
      '--data-dir',
      dataDir,
      '--port',
      '0',
      '--ws-port',
      '0',
      '--http-port',
      '0',
      '--log-level',
      'warn',
    ],
    { env },
  );
  const ws = await child.waitForLine((l) => /^pubsub: ws listening on /.test(l), 'the ws line');
  const api = await child.waitForLine((l) => /^pubsub: admin API listening on /.test(l), 'the API line');
  await child.waitForLine((l) => /^pubsub: account id [0-9a-f]{32}$/.test(l), 'the account line');
  const tokenLine = child.lines.find((l) => l.startsWith('pubsub: admin API token'));
  return {
    child,
    wsUrl: ws.split(' ').pop()!,
    apiUrl: api.split(' ').pop()!,
    tokenLine,
  };
}

async function stop(child: Child): Promise<void> {
  child.process.kill('SIGTERM');
  assert.deepEqual(await child.waitForExit(5000), { code: 0, signal: null }, child.report());
}

async function call(r: Running, token: string, method: string, path: string, body?: unknown) {
  const res = await fetch(`${r.apiUrl}/client/v4${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return (await res.json()) as { success: boolean; result: unknown };
}

it('namespaces and brokers survive a restart; the admin token is written once, 0600 in a 0700 dir, never to a pipe', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pubsub-restart-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const dataDir = join(dir, 'data');

  const first = await start(t, dataDir);
  const tokenFile = join(dataDir, 'admin-token');
  // stdout is a pipe here: the banner names the file, not the secret.
  assert.equal(
    first.tokenLine,
    `pubsub: admin API token written to ${tokenFile} (mode 0600)`,
    first.child.report(),
  );
  const token = readFileSync(tokenFile, 'utf8').trim();
  assert.ok(token.startsWith('pubsub_'));
  assert.ok(!first.child.lines.some((l) => l.includes(token)), 'the secret reached stdout');
  assert.equal(statSync(tokenFile).mode & 0o777, 0o600);
  assert.equal(statSync(dataDir).mode & 0o777, 0o700);
  assert.equal(readFileSync(join(dataDir, 'api-url'), 'utf8').trim(), first.apiUrl);
  const accounts = (await call(first, token, 'GET', '/accounts')).result as { id: string }[];
  const account = accounts[0]!.id;
  assert.equal(
    (await call(first, token, 'POST', `/accounts/${account}/pubsub/namespaces`, { name: 'kept' })).success,
    true,
  );
  const created = await call(first, token, 'POST', `/accounts/${account}/pubsub/namespaces/kept/brokers`, {
    name: 'edge',
    authType: 'NONE',
    expiration: 3600,
  });
  assert.equal(created.success, true);
  await stop(first.child);

  const second = await start(t, dataDir);
  assert.equal(second.tokenLine, undefined, 'no new token on a later start');
  assert.equal(readFileSync(tokenFile, 'utf8').trim(), token);
  const brokers = (await call(second, token, 'GET', `/accounts/${account}/pubsub/namespaces/kept/brokers`))
    .result as { id: string; name: string; expiration: number }[];
  assert.deepEqual(
    brokers.map((b) => [b.name, b.expiration]),
    [['edge', 3600]],
  );
  assert.equal(brokers[0]!.id, (created.result as { id: string }).id);

  const client = await mqtt.connectAsync(second.wsUrl, {
    protocolVersion: 5,
    reconnectPeriod: 0,
    wsOptions: { headers: { host: 'edge.kept.localhost' } },
  } as mqtt.IClientOptions);
  const got = new Promise<string>((resolve) => client.once('message', (_t, p) => resolve(`${p}`)));
  await client.subscribeAsync('after/restart', { qos: 1 });
  await client.publishAsync('after/restart', 'still here', { qos: 1 });
  assert.equal(await got, 'still here');
  await client.endAsync();
  await stop(second.child);
});
