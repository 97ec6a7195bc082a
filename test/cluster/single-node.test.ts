/**
 * Off by default (issue 18): a server without `--cluster` never loads src/cluster nor the NATS
 * client (server.ts imports them dynamically, in cluster mode only), so a single node's memory
 * and start-up do not grow; GET /cluster says it is not in a cluster and /readyz has no cluster
 * check. Every module resolution of this process is recorded from before the server is
 * imported, through a resolve hook.
 */
import assert from 'node:assert/strict';
import { registerHooks } from 'node:module';
import { test } from 'node:test';
import mqtt from 'mqtt';

const resolved: string[] = [];
registerHooks({
  resolve(specifier, context, next) {
    resolved.push(specifier);
    return next(specifier, context);
  },
});
const { startServer } = await import('../helpers/server.ts');

test('a single node loads neither src/cluster nor the NATS client, and says it is no cluster', async (t) => {
  const ts = await startServer({ httpPort: 0 });
  t.after(() => ts.close());
  const client = await mqtt.connectAsync(ts.url, { protocolVersion: 5, reconnectPeriod: 0 });
  await client.subscribeAsync('single/x');
  await client.publishAsync('single/x', 'one', { qos: 1 });
  await client.endAsync();
  const cluster = await fetch(`${ts.apiUrl}/cluster`, {
    headers: { authorization: `Bearer ${ts.adminToken}` },
  });
  assert.equal(cluster.status, 200);
  const body = (await cluster.json()) as { result: { enabled: boolean; nodes: unknown[] } };
  assert.equal(body.result.enabled, false);
  assert.deepEqual(body.result.nodes, []);
  const readyz = (await (await fetch(`${ts.apiUrl}/readyz`)).json()) as { checks: Record<string, string> };
  assert.deepEqual(Object.keys(readyz.checks).sort(), ['listeners', 'store']);
  assert.ok(
    resolved.some((s) => s.endsWith('/server.ts')),
    'the hook sees the server load',
  );
  assert.deepEqual(
    resolved.filter((s) => s.includes('@nats-io') || s.includes('/cluster/')),
    [],
  );
});
