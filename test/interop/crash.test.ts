/**
 * The durability contract end to end (issue 7's acceptance): a real `pubsub serve` process,
 * a persistent MQTT.js v5 subscriber gone offline, a publisher that gets every PUBACK/PUBREC
 * for 10,000 QoS 1 and 1,000 QoS 2 messages, then SIGKILL: no shutdown, no flush. Restarted on
 * the same data directory, the server hands the subscriber every message, QoS 2 exactly once
 * and QoS 1 at least once, in order per topic; a retained message acknowledged before the kill
 * is there too.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import mqtt from 'mqtt';
import type { Child } from '../helpers/child-process.ts';
import { startServe, tempDir } from '../helpers/pubsub-process.ts';

const QOS1 = 10_000;
const QOS2 = 1_000;

/** `pubsub serve` on `dataDir` (MQTT over TCP only); resolves with the process and its MQTT URL. */
async function serve(t: TestContext, dataDir: string): Promise<{ child: Child; url: string }> {
  const { child, urls } = await startServe(t, {
    dataDir,
    args: ['--ws-port', '-1', '--http-port', '-1', '--max-queued-messages', String(QOS1 + QOS2)],
  });
  return { child, url: urls.mqtt! };
}

const SUBSCRIBER: mqtt.IClientOptions = {
  protocolVersion: 5,
  clientId: 'crash-subscriber',
  clean: false,
  properties: { sessionExpiryInterval: 86_400 },
  reconnectPeriod: 0,
};

describe('crash (SIGKILL) and restart', () => {
  it('every acknowledged message reaches the persistent subscriber: QoS 2 once, QoS 1 at least once, in order', async (t) => {
    const dataDir = join(tempDir(t, 'pubsub-crash-'), 'data');

    const first = await serve(t, dataDir);
    const subscriber = await mqtt.connectAsync(first.url, SUBSCRIBER);
    await subscriber.subscribeAsync({ 'crash/q1': { qos: 1 }, 'crash/q2': { qos: 2 } });
    await subscriber.endAsync();

    const publisher = await mqtt.connectAsync(first.url, { protocolVersion: 5, reconnectPeriod: 0 });
    t.after(() => publisher.endAsync(true));
    const acks: Promise<unknown>[] = [];
    for (let i = 0; i < QOS1; i++) {
      acks.push(publisher.publishAsync('crash/q1', `${i}`, { qos: 1 }));
      if (i % 10 === 0) acks.push(publisher.publishAsync('crash/q2', `${i / 10}`, { qos: 2 }));
    }
    acks.push(publisher.publishAsync('crash/retained', 'kept', { qos: 1, retain: true }));
    const results = await Promise.all(acks);
    assert.equal(results.length, QOS1 + QOS2 + 1);
    // Every PUBACK/PUBREC is in: kill at once, before any shutdown could save anything.
    first.child.process.kill('SIGKILL');
    assert.equal((await first.child.exited).signal, 'SIGKILL');
    publisher.end(true);

    const second = await serve(t, dataDir);
    const received = new Map<string, number[]>([
      ['crash/q1', []],
      ['crash/q2', []],
    ]);
    const client = mqtt.connect(second.url, SUBSCRIBER);
    t.after(() => client.endAsync(true));
    const sessionPresent = new Promise<boolean>((resolve) =>
      client.once('connect', (p) => resolve(p.sessionPresent)),
    );
    const distinct = new Set<string>();
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`received ${distinct.size} of ${QOS1 + QOS2} distinct messages`)),
        60_000,
      );
      t.after(() => clearTimeout(timer));
      client.on('message', (topic, payload) => {
        received.get(topic)?.push(Number(`${payload}`));
        distinct.add(`${topic} ${payload}`);
        if (distinct.size === QOS1 + QOS2) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    assert.equal(await sessionPresent, true, 'the session survived the crash');
    await done;
    // Let anything still in flight (a duplicate would show here) arrive.
    await new Promise((resolve) => setTimeout(resolve, 300));

    const q2 = received.get('crash/q2')!;
    assert.deepEqual(
      q2,
      Array.from({ length: QOS2 }, (_, i) => i),
      'QoS 2: every message exactly once, in order',
    );
    const q1 = received.get('crash/q1')!;
    const firstSeen = q1.filter((n, i) => q1.indexOf(n) === i);
    assert.deepEqual(
      firstSeen,
      Array.from({ length: QOS1 }, (_, i) => i),
      'QoS 1: every message, in order',
    );

    const reader = await mqtt.connectAsync(second.url, { protocolVersion: 5, reconnectPeriod: 0 });
    t.after(() => reader.endAsync(true));
    const retained = new Promise<string>((resolve) => reader.once('message', (_t, p) => resolve(`${p}`)));
    await reader.subscribeAsync('crash/retained', { qos: 1 });
    assert.equal(await retained, 'kept');
  });
});
