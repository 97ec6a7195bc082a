/**
 * Sandboxed on-publish functions end to end (issue 9): deployed with the real `pubsub broker
 * hook deploy` binary against a running server with a data directory, exercised by MQTT.js
 * publishers and subscribers: a transform, drops, an aggregation publishing a rolling average
 * with `ctx.publish` and `ctx.state`, an infinite loop stopped by the CPU limit (the v5
 * publisher gets 0x80 and the error shows in `hook show` and the API) with the next message
 * served, a deployment refused with its reason while the old version keeps running, the
 * function/webhook conflict, and the function and its state surviving a restart.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import type { HookView } from '../../src/hooks/index.ts';
import { until } from '../helpers/child-process.ts';
import { runCli } from '../helpers/pubsub-process.ts';
import { pubsubApi, startServer, type TestServer } from '../helpers/server.ts';

const AVERAGE = `
  export function onPublish(messages, ctx) {
    const window = ctx.state.get('window') ?? [];
    for (const m of messages) if (m.topic.startsWith('sensors/')) window.push(Number(m.payload));
    const last = window.slice(-3);
    ctx.state.set('window', last);
    if (last.length > 0)
      ctx.publish('sensors-avg', String(last.reduce((a, b) => a + b, 0) / last.length), { qos: 1 });
    return messages;
  }`;

describe('on-publish functions', () => {
  let dir: string;
  let ts: TestServer;
  const clients: mqtt.MqttClient[] = [];
  const NS = ['--ns', 'local'];

  const start = async (): Promise<void> => {
    ts = await startServer({ httpPort: 0, dataDir: join(dir, 'data'), functionCpuMs: 200 });
  };
  const cli = (args: string[]) =>
    runCli(args, { env: { PUBSUB_API_URL: ts.apiUrl!, PUBSUB_API_TOKEN: ts.adminToken } });
  const deploy = async (code: string) => {
    const file = join(dir, `fn-${Math.random().toString(36).slice(2)}.js`);
    writeFileSync(file, code);
    return cli(['broker', 'hook', 'deploy', 'default', ...NS, '--file', file]);
  };
  const hookView = async (): Promise<HookView> =>
    (await pubsubApi<HookView>(ts, 'GET', '/namespaces/local/brokers/default/hook')).result;
  const connect = async (): Promise<mqtt.MqttClient> => {
    const c = await mqtt.connectAsync(ts.url, { protocolVersion: 5, reconnectPeriod: 0 });
    clients.push(c);
    return c;
  };
  const subscriber = async (filter: string) => {
    const client = await connect();
    const seen: string[] = [];
    client.on('message', (topic, payload) => seen.push(`${topic} ${payload.toString('utf8')}`));
    await client.subscribeAsync(filter, { qos: 1 });
    return seen;
  };
  const text = { qos: 1 as const, properties: { payloadFormatIndicator: true } };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pubsub-fn-'));
    await start();
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await ts.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('deploy a transform with the CLI: payloads changed, filtered messages dropped', async () => {
    const deployed = await deploy(`
      export function onPublish(messages, ctx) {
        return messages
          .filter((m) => m.payload !== 'secret')
          .map((m) => ({ ...m, payload: typeof m.payload === 'string' ? m.payload.toUpperCase() : m.payload }));
      }`);
    assert.equal(deployed.code, 0, deployed.stderr);
    assert.match(deployed.stderr, /Deployed version 1 of the on-publish function of broker default/);
    const seen = await subscriber('fn/t/#');
    const pub = await connect();
    for (const p of ['hello', 'secret', 'world']) await pub.publishAsync('fn/t/a', p, text);
    await until(() => seen.length === 2, 'the transformed messages');
    assert.deepEqual(seen, ['fn/t/a HELLO', 'fn/t/a WORLD']);
    const view = await hookView();
    assert.equal(view.kind, 'function');
    assert.equal(view.function?.version, 1);
    assert.ok(view.metrics.dropped >= 1);
  });

  it('aggregate: ctx.state keeps a window across calls, ctx.publish sends the average elsewhere', async () => {
    const deployed = await deploy(AVERAGE);
    assert.equal(deployed.code, 0, deployed.stderr);
    const averages = await subscriber('sensors-avg');
    const pub = await connect();
    for (const v of [10, 20, 30, 40]) await pub.publishAsync('sensors/t', String(v), text);
    await until(() => averages.at(-1) === 'sensors-avg 30', 'the average of the last three (20, 30, 40)');
    assert.equal(averages[0], 'sensors-avg 10');
    assert.ok((await hookView()).metrics.published >= 4);
  });

  it('an infinite loop is stopped by the CPU limit: 0x80 to the publisher, error shown; the next call runs', async () => {
    const deployed = await deploy(`
      export function onPublish(messages) {
        if (messages.some((m) => m.payload === 'loop')) for (;;) {}
        return messages;
      }`);
    assert.equal(deployed.code, 0, deployed.stderr);
    const seen = await subscriber('fn/loop/#');
    const pub = await connect();
    await assert.rejects(pub.publishAsync('fn/loop/a', 'loop', text), (err: Error & { code?: number }) => {
      assert.equal(err.code, 0x80);
      return true;
    });
    await pub.publishAsync('fn/loop/a', 'fine', text);
    await until(() => seen.length === 1, 'the next message');
    assert.deepEqual(seen, ['fn/loop/a fine']);
    const shown = await cli(['broker', 'hook', 'show', 'default', ...NS]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /last errors:\n.*function: .*(cpu|time|interrupt)/i);
    assert.ok((await hookView()).metrics.failures >= 1);
  });

  it('a module that does not compile is refused with its reason; the running version stays', async () => {
    const before = (await hookView()).function!.version;
    const refused = await deploy('export function onPublish(messages) { return messages.map((m) => ; }');
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /function refused: .*SyntaxError/);
    const noExport = await deploy('export const x = 1;');
    assert.equal(noExport.code, 1);
    assert.match(noExport.stderr, /onPublish/);
    assert.equal((await hookView()).function!.version, before);
  });

  it('a webhook URL while a function runs is refused (409), and the reverse', async () => {
    const patch = await pubsubApi(ts, 'PATCH', '/namespaces/local/brokers/default', {
      on_publish: { url: 'http://127.0.0.1:1/hook' },
    });
    assert.equal(patch.success, false);
    assert.equal(patch.errors[0]!.code, 14011);
  });

  it('the function and its state survive a restart; remove deletes both', async () => {
    assert.equal((await deploy(AVERAGE)).code, 0, 'the aggregation again, its state kept across deployments');
    await ts.close();
    await start();
    const averages = await subscriber('sensors-avg');
    const pub = await connect();
    await pub.publishAsync('sensors/t', '100', text);
    // The stored window (30, 40 were the last of [20, 30, 40]) + 100: (30 + 40 + 100) / 3.
    await until(() => averages.length === 1, 'an average after the restart');
    assert.equal(averages[0], `sensors-avg ${(30 + 40 + 100) / 3}`);
    const removed = await cli(['broker', 'hook', 'remove', 'default', ...NS, '--yes']);
    assert.equal(removed.code, 0, removed.stderr);
    const view = await hookView();
    assert.equal(view.kind, 'none');
    assert.equal(view.function, null);
    const again = await cli(['broker', 'hook', 'remove', 'default', ...NS, '--yes']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /no on-publish function/);
  });
});
