/**
 * The derived-publish budget end to end (security review, finding 4), over MQTT.js clients of
 * a running server whose budget is 1 message/s with a 60 s burst (60 messages at once, then one
 * a second): one QoS 1 publish makes the function try 1000 retained publishes and only the
 * budget's reach the subscribers and the retained store; the refusals are counted in the API
 * and `hook show`; the function catching the error sees its message; an uncaught refusal fails
 * only its own call (0x80); other clients of the broker keep publishing and receiving while the
 * budget is spent, and another broker's function has its own budget.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import type { HookView } from '../../src/hooks/index.ts';
import { until } from '../helpers/child-process.ts';
import { runCli } from '../helpers/pubsub-process.ts';
import { type Envelope, pubsubApi, startServer, type TestServer } from '../helpers/server.ts';

const BURST = 60;
const TRIES = 1000;

/**
 * On `amp/go`: 1000 retained publishes, refusals caught, the first refusal's message forwarded
 * as the payload. On `amp/raw`: 100 publishes, refusals not caught.
 */
const AMPLIFY = `
  export function onPublish(messages, ctx) {
    for (const m of messages) {
      if (m.topic === 'amp/go') {
        let refusal = 'none';
        for (let i = 0; i < ${TRIES}; i++) {
          try {
            ctx.publish('amp/out/' + i, 'x', { qos: 1, retain: true });
          } catch (e) {
            if (refusal === 'none') refusal = e.name + ': ' + e.message;
          }
        }
        m.payload = refusal;
      }
      // Far more than the bucket can regain while the tests run, so it is surely refused.
      if (m.topic === 'amp/raw') for (let i = 0; i < 100; i++) ctx.publish('amp/out/raw' + i, 'x');
    }
    return messages;
  }`;

describe('derived-publish budget over MQTT', () => {
  let ts: TestServer;
  const clients: mqtt.MqttClient[] = [];
  const started = Date.now();

  const api = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const env: Envelope<T> = await pubsubApi<T>(ts, method, path, body);
    assert.equal(env.success, true, JSON.stringify(env.errors));
    return env.result;
  };
  const hookView = (ns: string, broker: string) =>
    api<HookView>('GET', `/namespaces/${ns}/brokers/${broker}/hook`);
  const track = (c: mqtt.MqttClient): mqtt.MqttClient => {
    clients.push(c);
    return c;
  };
  const onDefault = async () =>
    track(await mqtt.connectAsync(ts.url, { protocolVersion: 5, reconnectPeriod: 0 }));
  const onOther = async () =>
    track(
      await mqtt.connectAsync(ts.wsUrl, {
        protocolVersion: 5,
        reconnectPeriod: 0,
        wsOptions: { headers: { host: 'beta.other.localhost' } },
      } as mqtt.IClientOptions),
    );
  const inbox = async (client: mqtt.MqttClient, filter: string): Promise<string[]> => {
    const got: string[] = [];
    client.on('message', (topic, payload, packet) => {
      if (packet.retain) return; // only live deliveries
      got.push(`${topic} ${payload}`);
    });
    await client.subscribeAsync(filter, { qos: 1 });
    return got;
  };
  /** The most the budget can have let through since the server started (burst + 1/s). */
  const ceiling = () => BURST + Math.ceil((Date.now() - started) / 1000) + 1;

  before(async () => {
    ts = await startServer({
      httpPort: 0,
      functionCpuMs: 5000,
      functionPublishRate: 1,
      functionPublishBurstMs: BURST * 1000,
    });
    await api('POST', '/namespaces', { name: 'other' });
    await api('POST', '/namespaces/other/brokers', { name: 'beta', authType: 'NONE' });
    for (const path of ['/namespaces/local/brokers/default', '/namespaces/other/brokers/beta'])
      await api('PUT', `${path}/hook/function`, { code: AMPLIFY });
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await ts.close();
  });

  it('one QoS 1 publish makes 1000 tries; only the budget reaches subscribers and the retained store', async () => {
    const out = await inbox(await onDefault(), 'amp/out/#');
    const go = await inbox(await onDefault(), 'amp/go');
    const pub = await onDefault();
    await pub.publishAsync('amp/go', 'go', { qos: 1 });

    const view = await hookView('local', 'default');
    const { published, publishRefused } = view.metrics;
    assert.ok(published >= BURST && published <= ceiling(), `${published} published`);
    assert.equal(published + publishRefused, TRIES, 'every try either published or counted as refused');
    assert.deepEqual(view.publish_budget, {
      messages_per_second: 1,
      bytes_per_second: 1048576,
      burst_ms: 60000,
    });
    await until(() => out.length === published, `${published} derived messages at the subscriber`);
    assert.equal(ts.server.defaultBroker.retained.size, published);

    await until(() => go.length === 1, 'the original, forwarded by the function');
    assert.match(
      go[0]!,
      /^amp\/go RangeError: ctx\.publish: over the derived-publish budget of 1 messages\/s per broker \(--function-publish-rate, burst --function-publish-burst-ms 60000\); it refills in \d+ ms$/,
    );
  });

  it('while the budget is spent, other clients of the broker still publish and receive', async () => {
    const chat = await inbox(await onDefault(), 'chat/#');
    const pub = await onDefault();
    for (let i = 0; i < 5; i++) await pub.publishAsync('chat/a', `m${i}`, { qos: 1 });
    await until(() => chat.length === 5, 'the five chat messages');
    assert.deepEqual(chat, ['chat/a m0', 'chat/a m1', 'chat/a m2', 'chat/a m3', 'chat/a m4']);
  });

  it('an uncaught refusal fails only its own call (0x80 under fail-closed), with the message in lastErrors', async () => {
    const before = (await hookView('local', 'default')).metrics;
    const pub = await onDefault();
    await assert.rejects(pub.publishAsync('amp/raw', 'x', { qos: 1 }), (err: Error & { code?: number }) => {
      assert.equal(err.code, 0x80);
      return true;
    });
    const view = (await hookView('local', 'default')).metrics;
    assert.equal(view.failures, before.failures + 1);
    assert.match(view.lastErrors.at(-1)!.message, /ctx\.publish: over the derived-publish budget/);
    assert.equal(view.published, before.published, 'the failed call published none of what it was admitted');
    const chat = await inbox(await onDefault(), 'chat/#');
    await pub.publishAsync('chat/b', 'after', { qos: 1 });
    await until(() => chat.length === 1, 'a message after the failed call');
  });

  it("another broker's function has its own budget", async () => {
    const out = await inbox(await onOther(), 'amp/out/#');
    const pub = await onOther();
    await pub.publishAsync('amp/go', 'go', { qos: 1 });
    const { published, publishRefused } = (await hookView('other', 'beta')).metrics;
    assert.ok(published >= BURST && published <= ceiling(), `${published} published on beta`);
    assert.equal(published + publishRefused, TRIES);
    await until(() => out.length === published, 'the derived messages on beta');
  });

  it('`pubsub broker hook show` prints the budget and the refusals', async () => {
    const shown = await runCli(['broker', 'hook', 'show', 'default', '--ns', 'local'], {
      env: { PUBSUB_API_URL: ts.apiUrl, PUBSUB_API_TOKEN: ts.adminToken },
    });
    assert.equal(shown.code, 0, shown.stderr);
    const { published, publishRefused } = (await hookView('local', 'default')).metrics;
    assert.match(
      shown.stdout,
      new RegExp(`published by function: +${published} \\(${publishRefused} refused by the budget\\)`),
    );
    assert.match(shown.stdout, /publish budget: +1 messages\/s, 1048576 bytes\/s, burst 60000 ms/);
  });
});
