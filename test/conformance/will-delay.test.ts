/**
 * Will Delay Interval (section 3.1.3.2.2) and its interplay with Session Expiry: the will goes
 * out when the delay passes or the session ends, whichever is first [MQTT-3.1.2-8]; a
 * reconnection within the delay cancels it [MQTT-3.1.3-9]. (The plain delay, reconnection and
 * DISCONNECT 0x04 at packet level: features.test.ts.) MQTT.js sets the will properties here.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import mqtt from 'mqtt';
import { harness, sleep, text } from '../helpers/v5-harness.ts';

const h = harness('willdelay');

describe('Will Delay Interval and Session Expiry', () => {
  test('a delay longer than the session expiry: the will goes out when the session ends (1 s), not after 10 s [MQTT-3.1.2-8]', async () => {
    const watcher = await h.connected(5);
    await h.subscribe(watcher, 'wde/a', 1);
    const w = await h.connected(5, {
      properties: { sessionExpiryInterval: 1 },
      will: {
        topic: 'wde/a',
        payload: Buffer.from('at expiry'),
        qos: 1,
        retain: false,
        properties: { willDelayInterval: 10 },
      },
    });
    const closedAt = Date.now();
    w.destroy();
    const will = await h.receive(watcher, 5000);
    assert.equal(text(will), 'at expiry');
    const after = Date.now() - closedAt;
    assert.ok(after >= 700 && after < 5000, `published ${after} ms after the close`);
  });

  test('Session Expiry 0: the session ends with the connection, so a delayed will is published at once', async () => {
    const watcher = await h.connected(5);
    await h.subscribe(watcher, 'wde/b', 1);
    const w = await h.connected(5, {
      will: {
        topic: 'wde/b',
        payload: Buffer.from('now'),
        qos: 1,
        retain: false,
        properties: { willDelayInterval: 30 },
      },
    });
    w.destroy();
    assert.equal(text(await h.receive(watcher, 1000)), 'now');
  });

  test('will properties reach the subscriber, without the Will Delay Interval', async () => {
    const watcher = await h.connected(5);
    await h.subscribe(watcher, 'wde/c', 1);
    const w = await h.connected(5, {
      will: {
        topic: 'wde/c',
        payload: Buffer.from('{}'),
        qos: 1,
        retain: false,
        properties: { willDelayInterval: 0, contentType: 'application/json', userProperties: [['k', 'v']] },
      },
    });
    w.destroy();
    const will = await h.receive(watcher);
    assert.deepEqual(will.properties, { contentType: 'application/json', userProperties: [['k', 'v']] });
  });
});

describe('Will Delay with MQTT.js', () => {
  const willOptions = (topic: string, payload: string, clientId: string) => ({
    protocolVersion: 5 as const,
    reconnectPeriod: 0,
    clientId,
    clean: false,
    properties: { sessionExpiryInterval: 30 },
    will: {
      topic,
      payload: Buffer.from(payload),
      qos: 1 as const,
      retain: false,
      properties: { willDelayInterval: 1 },
    },
  });

  test('an MQTT.js client whose connection drops has its will published after the 1 s delay; one that comes back in time does not', async (t) => {
    const watcher = await mqtt.connectAsync(h.url(), { protocolVersion: 5, reconnectPeriod: 0 });
    t.after(() => watcher.endAsync(true));
    const got: string[] = [];
    watcher.on('message', (_t, p) => got.push(p.toString()));
    await watcher.subscribeAsync('wde/js/#', { qos: 1 });

    // returning and again are the 2nd and 4th clients: on one node of a two-node cluster, where
    // their persistent session stays (issue 19 moves sessions between nodes).
    const backId = h.uid();
    const returning = await mqtt.connectAsync(h.url(), willOptions('wde/js/back', 'back', backId));
    const lostId = h.uid();
    const lost = await mqtt.connectAsync(h.url(), willOptions('wde/js/lost', 'lost', lostId));
    lost.stream.destroy();
    returning.stream.destroy();
    await Promise.all([lost.endAsync(true), returning.endAsync(true)]);
    const again = await mqtt.connectAsync(h.url(), willOptions('wde/js/back', 'back', backId));
    t.after(() => again.endAsync(true));
    await sleep(400);
    assert.deepEqual(got, [], 'nothing before the delay');
    const deadline = Date.now() + 4000;
    while (got.length === 0 && Date.now() < deadline) await sleep(20);
    await sleep(1200);
    assert.deepEqual(got, ['lost'], 'the lost client’s will only');
    await again.endAsync(false, { properties: { sessionExpiryInterval: 0 } });
  });
});
