/**
 * Control-plane state survives a restart of a real `pubsub serve` process: the first start
 * bootstraps (token printed once, written 0600), namespaces and brokers created through the API
 * are there after SIGTERM and a new start, and their live brokers serve MQTT again.
 */
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import mqtt from 'mqtt';
import { type RunningServe, startServe, tempDir } from '../helpers/pubsub-process.ts';

async function call(r: RunningServe, token: string, method: string, path: string, body?: unknown) {
  const res = await fetch(`${r.apiUrl}/client/v4${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return (await res.json()) as { success: boolean; result: unknown };
}

it('namespaces and brokers survive a restart; the admin token is written once, 0600 in a 0700 dir, never to a pipe', async (t) => {
  const dataDir = join(tempDir(t, 'pubsub-restart-'), 'data');

  const first = await startServe(t, { dataDir });
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
  await first.stop();

  const second = await startServe(t, { dataDir });
  // No new token on a later start; while the bootstrap token is the only one, its file is named again.
  assert.equal(
    second.tokenLine,
    `pubsub: admin API token in ${tokenFile} (mode 0600; \`pubsub token show-bootstrap\` prints it)`,
    second.child.report(),
  );
  assert.ok(!second.child.lines.some((l) => l.includes(token)), 'the secret reached stdout');
  assert.equal(readFileSync(tokenFile, 'utf8').trim(), token);
  const brokers = (await call(second, token, 'GET', `/accounts/${account}/pubsub/namespaces/kept/brokers`))
    .result as { id: string; name: string; expiration: number }[];
  assert.deepEqual(
    brokers.map((b) => [b.name, b.expiration]),
    [['edge', 3600]],
  );
  assert.equal(brokers[0]!.id, (created.result as { id: string }).id);

  const client = await mqtt.connectAsync(second.urls.ws!, {
    protocolVersion: 5,
    reconnectPeriod: 0,
    wsOptions: { headers: { host: 'edge.kept.localhost' } },
  } as mqtt.IClientOptions);
  const got = new Promise<string>((resolve) => client.once('message', (_t, p) => resolve(`${p}`)));
  await client.subscribeAsync('after/restart', { qos: 1 });
  await client.publishAsync('after/restart', 'still here', { qos: 1 });
  assert.equal(await got, 'still here');
  await client.endAsync();
  await second.stop();
});
