/**
 * Message Expiry Interval (section 3.3.2.3.3): forwarded as the time left [MQTT-3.3.2-6];
 * messages whose interval passed before onward delivery started are not delivered from a
 * session's queue or from the retained store [MQTT-3.3.2-5]. Packet-level clients and MQTT.js.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import mqtt from 'mqtt';
import { harness, sleep, text } from '../helpers/v5-harness.ts';

const h = harness('expiry');

describe('Message Expiry Interval', () => {
  test('a queued message is forwarded with its interval minus the time it waited, and an expired one is not forwarded at all', async () => {
    const id = h.uid();
    const session = { sessionExpiryInterval: 60 };
    const sub = await h.connected(5, { clientId: id, properties: session });
    await h.subscribe(sub, 'exp/q', 1);
    sub.send({ type: 'disconnect', reasonCode: 0 });
    await sub.closed();
    const pub = await h.connected(5);
    await h.publish(pub, 'exp/q', 'short', 1, { properties: { messageExpiryInterval: 1 } });
    await h.publish(pub, 'exp/q', 'long', 1, { properties: { messageExpiryInterval: 10 } });
    await h.publish(pub, 'exp/q', 'forever', 1);
    await sleep(2100);
    const back = h.open(5);
    assert.equal(
      (await back.connect({ clientId: id, clean: false, properties: session })).sessionPresent,
      true,
    );
    const long = await h.receive(back);
    assert.equal(text(long), 'long', 'the expired message was skipped');
    const left = long.properties?.messageExpiryInterval ?? 0;
    assert.ok(left >= 7 && left <= 8, `forwarded with ${left} s left after about 2 s in the broker`);
    const forever = await h.receive(back);
    assert.equal(text(forever), 'forever');
    assert.equal(forever.properties?.messageExpiryInterval, undefined, 'no interval: none forwarded');
    back.send({ type: 'disconnect', reasonCode: 0, properties: { sessionExpiryInterval: 0 } });
  });

  test('a retained message is not sent once expired, and is sent with its remaining interval before', async () => {
    const pub = await h.connected(5);
    await h.publish(pub, 'exp/r/short', 'short', 1, {
      retain: true,
      properties: { messageExpiryInterval: 1 },
    });
    await h.publish(pub, 'exp/r/long', 'long', 1, {
      retain: true,
      properties: { messageExpiryInterval: 30 },
    });
    await sleep(2100);
    const sub = await h.connected(5);
    await h.subscribe(sub, 'exp/r/#', 1);
    const got = await h.receive(sub);
    assert.equal(text(got), 'long');
    const left = got.properties?.messageExpiryInterval ?? 0;
    assert.ok(left >= 27 && left <= 28, `${left} s left`);
    await sub.expectSilence(300);
    assert.equal(
      h.node(sub).defaultBroker.retained.get('exp/r/short'),
      undefined,
      'the expired message was removed (by the node that met it)',
    );
    await h.publish(pub, 'exp/r/long', '', 0, { retain: true });
  });

  test('MQTT.js receives the Message Expiry Interval on a live message, unchanged when forwarded at once', async (t) => {
    const sub = await mqtt.connectAsync(h.url(), { protocolVersion: 5, reconnectPeriod: 0 });
    const pub = await mqtt.connectAsync(h.url(), { protocolVersion: 5, reconnectPeriod: 0 });
    t.after(() => Promise.all([sub.endAsync(true), pub.endAsync(true)]));
    await sub.subscribeAsync('exp/js', { qos: 1 });
    const got = new Promise<number | undefined>((resolve) =>
      sub.once('message', (_t, _p, packet) => resolve(packet.properties?.messageExpiryInterval)),
    );
    await pub.publishAsync('exp/js', 'x', { qos: 1, properties: { messageExpiryInterval: 120 } });
    assert.equal(await got, 120);
  });
});
