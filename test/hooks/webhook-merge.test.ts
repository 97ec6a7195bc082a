/**
 * Webhook batches that wait for a free call go out together (issue 22, `--hook-batch-max`):
 * while every `--hook-concurrency` call is in flight, sealed batches wait; when a call ends,
 * the oldest waiting batch is sent with those behind it, up to `--hook-batch-max` messages and
 * 1 MiB of payload, and decisions still leave in publish order. End to end with a real HTTP
 * hook and MQTT.js; the caps are checked on the pipeline with a scripted hook.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import type { HookMessage, PublishHook } from '../../src/hooks/index.ts';
import { OnPublishPipeline } from '../../src/hooks/index.ts';
import { silentLogger } from '../../src/observability/index.ts';
import { Message } from '../../src/router/index.ts';
import { until } from '../helpers/child-process.ts';
import { pubsubApi, startServer, type TestServer } from '../helpers/server.ts';

describe('webhook: batches that waited for a free call are merged', () => {
  let ts: TestServer;
  let hookServer: Server;
  let url: string;
  /** Messages per request, in arrival order. */
  const requests: HookMessage[][] = [];
  /** Answers the first request when called. */
  let releaseFirst: () => void = () => {};
  const firstHeld = new Promise<void>((resolve) => (releaseFirst = resolve));
  const clients: mqtt.MqttClient[] = [];

  before(async () => {
    hookServer = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        requests.push(JSON.parse(body) as HookMessage[]);
        const reply = () => res.writeHead(200, { 'content-type': 'application/json' }).end(body);
        if (requests.length === 1) firstHeld.then(reply);
        else reply();
      });
    });
    await new Promise<void>((resolve) => hookServer.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(hookServer.address() as AddressInfo).port}/hook`;
    ts = await startServer({
      httpPort: 0,
      hookBatchSize: 2,
      hookBatchWindowMs: 1000,
      hookConcurrency: 1,
      hookBatchMax: 10,
    });
    const env = await pubsubApi(ts, 'PATCH', '/namespaces/local/brokers/default', { on_publish: { url } });
    assert.equal(env.success, true, JSON.stringify(env.errors));
  });
  after(async () => {
    releaseFirst();
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await ts.close();
    hookServer.closeAllConnections();
    await new Promise<void>((resolve) => hookServer.close(() => resolve()));
  });

  it('one call in flight: the five batches of 2 behind it go out as one request of 10, in order', async () => {
    const sub = await mqtt.connectAsync(ts.url, { protocolVersion: 5, reconnectPeriod: 0 });
    const pub = await mqtt.connectAsync(ts.url, { protocolVersion: 5, reconnectPeriod: 0 });
    clients.push(sub, pub);
    const seen: string[] = [];
    sub.on('message', (_topic, payload) => seen.push(payload.toString('utf8')));
    await sub.subscribeAsync('merge/#', { qos: 1 });
    const acks = Array.from({ length: 12 }, (_, i) =>
      pub.publishAsync('merge/t', `${i}`, { qos: 1, properties: { payloadFormatIndicator: true } }),
    );
    await until(() => requests.length === 1, 'the first request');
    const pending = () =>
      [...ts.server.tenancy.tenants()].find((t) => t.record.name === 'default')!.hooks.pipeline.pending;
    await until(() => pending() === 12, 'every message waiting for the hook');
    releaseFirst();
    await Promise.all(acks);
    await until(() => seen.length === 12, 'every message delivered');
    assert.deepEqual(
      requests.map((r) => r.map((m) => m.payload)),
      [
        ['0', '1'],
        ['2', '3', '4', '5', '6', '7', '8', '9', '10', '11'],
      ],
    );
    assert.deepEqual(
      requests[1]!.map((m) => m.mid),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
      'mids count from 0 in the merged request',
    );
    assert.deepEqual(
      seen,
      Array.from({ length: 12 }, (_, i) => `${i}`),
    );
  });
});

/** A hook whose calls the test settles by hand. */
class ScriptedHook implements PublishHook {
  readonly kind = 'webhook';
  readonly calls: { batch: HookMessage[]; settle: (answer: unknown) => void }[] = [];
  run(batch: HookMessage[]): Promise<unknown> {
    return new Promise((resolve) => this.calls.push({ batch, settle: resolve }));
  }
  close(): void {}
}

describe('OnPublishPipeline: merging waiting batches', () => {
  const tick = () => new Promise((resolve) => setImmediate(resolve));
  const run = async (mergeUpTo: number | undefined, payloadBytes: number): Promise<number[]> => {
    const hook = new ScriptedHook();
    const pipeline = new OnPublishPipeline(hook, {
      brokerName: 'b.ns.localhost',
      policy: 'fail-closed',
      batchSize: 2,
      batchWindowMs: 1000,
      concurrency: 1,
      maxPending: 1000,
      log: silentLogger(),
      ...(mergeUpTo === undefined ? {} : { mergeUpTo }),
    });
    const decided: number[] = [];
    for (let i = 0; i < 10; i++) {
      const payload = Buffer.alloc(payloadBytes, 0x61);
      payload.write(`${i}`);
      pipeline.submit(
        {
          message: new Message({ topic: 't', payload, qos: 1, retain: false, senderId: 'c' }),
          jti: undefined,
          decided: (m) => decided.push(Number.parseInt(m!.payload.toString('latin1'), 10)),
        },
        undefined,
      );
    }
    for (let answered = 0; answered < hook.calls.length; answered++) {
      hook.calls[answered]!.settle(hook.calls[answered]!.batch);
      await tick();
    }
    assert.deepEqual(decided, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'decided in submission order');
    return hook.calls.map((c) => c.batch.length);
  };

  it('merges up to mergeUpTo messages per call', async () => {
    assert.deepEqual(await run(5, 10), [2, 4, 4], 'batches of 2 merged two by two (a third would make 6)');
  });

  it('never merges without mergeUpTo (function hooks) or with it at the batch size', async () => {
    assert.deepEqual(await run(undefined, 10), [2, 2, 2, 2, 2]);
    assert.deepEqual(await run(2, 10), [2, 2, 2, 2, 2]);
  });

  it('stops merging at 1 MiB of payload', async () => {
    assert.deepEqual(await run(100, 300 * 1024), [2, 2, 2, 2, 2], 'two batches of 600 KiB are over 1 MiB');
    assert.deepEqual(await run(100, 200 * 1024), [2, 4, 4], 'four messages of 200 KiB are under it');
  });
});
