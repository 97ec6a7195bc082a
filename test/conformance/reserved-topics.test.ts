/**
 * Topics the server keeps from clients (section 4.7.2: the Server SHOULD prevent Clients from
 * using `$` topics to exchange messages): a client PUBLISH to `$SYS/...` or `$share/...` is
 * refused like a topic-ACL refusal (v5 QoS 1/2: 0x87; QoS 0 and v3: dropped, acknowledged as
 * usual), counted, and reaches no subscriber; a will naming one is refused at CONNECT (v5 0x87,
 * v3 0x05). Other `$` topics stay usable (features.test.ts), and the broker's own publishes to
 * `$SYS` (the server side, not a client) are delivered.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Message } from '../../src/router/index.ts';
import { harness, pid, text } from '../helpers/v5-harness.ts';
import { expectAck } from '../helpers/wire.ts';

// The broker's own $SYS tree is off here (--sys-interval 0), so whatever a $SYS subscriber
// receives is a client's message leaking through (the tree is test/interop/sys-tree.test.ts).
const h = harness('reserved', { sysInterval: 0 });

/** A v5 subscriber to `filter` at QoS 2 (so any leak would show). */
async function watcher(filter: string) {
  const c = await h.connected(5);
  assert.deepEqual(await h.subscribe(c, filter, 2), [2]);
  return c;
}

describe('client PUBLISH to $SYS and $share', () => {
  test('v5: QoS 1 gets PUBACK 0x87, QoS 2 PUBREC 0x87, QoS 0 is dropped; all counted, none delivered', async () => {
    const sys = await watcher('$SYS/#');
    const pub = await h.connected(5);
    const before = h.stat('droppedNotAuthorized');
    await h.publish(pub, '$SYS/broker/uptime', 'spoof-0', 0);
    for (const [qos, type] of [
      [1, 'puback'],
      [2, 'pubrec'],
    ] as const) {
      const packetId = pid();
      pub.send({
        type: 'publish',
        topic: '$SYS/broker/uptime',
        payload: Buffer.from(`spoof-${qos}`),
        qos,
        retain: false,
        dup: false,
        packetId,
      });
      const ack = await expectAck(pub, type);
      assert.equal(ack.packetId, packetId);
      assert.equal(ack.reasonCode, 0x87, `${type} Not authorized`);
    }
    assert.equal(h.stat('droppedNotAuthorized') - before, 3);
    await sys.expectSilence();
  });

  test('v3.1.1: QoS 0, 1 and 2 are dropped and acknowledged normally [MQTT-3.3.5-2]; counted, none delivered', async () => {
    const sys = await watcher('$SYS/#');
    const pub = await h.connected(4);
    const before = h.stat('droppedNotAuthorized');
    await h.publish(pub, '$SYS/broker/load', 'spoof-0', 0);
    await h.publish(pub, '$SYS/broker/load', 'spoof-1', 1, { retain: true });
    await h.publish(pub, '$SYS/broker/load', 'spoof-2', 2);
    await h.publish(pub, 'after/spoof', 'x', 1); // the connection still serves
    assert.equal(h.stat('droppedNotAuthorized') - before, 3);
    await sys.expectSilence();
    for (const node of h.nodes())
      assert.equal(node.defaultBroker.retained.get('$SYS/broker/load'), undefined, 'not retained');
  });

  test('$share is a subscription prefix only: a PUBLISH to $share/g/t is refused (v5 0x87), $SYS itself too', async () => {
    const shared = await watcher('$share/g/t');
    const pub = await h.connected(5);
    for (const topic of ['$share/g/t', '$share', '$SYS']) {
      const packetId = pid();
      pub.send({
        type: 'publish',
        topic,
        payload: Buffer.from('x'),
        qos: 1,
        retain: false,
        dup: false,
        packetId,
      });
      assert.equal((await expectAck(pub, 'puback')).reasonCode, 0x87, topic);
    }
    await shared.expectSilence();
  });

  test('a $SYS will is refused at CONNECT: v5 CONNACK 0x87, v3.1.1 return code 0x05 [MQTT-3.1.4-2]', async () => {
    const will = {
      topic: '$SYS/broker/clients',
      payload: Buffer.from('gone'),
      qos: 0 as const,
      retain: false,
    };
    const v5 = await h.open(5).connect({ clientId: h.uid(), will });
    assert.equal(v5.reasonCode, 0x87);
    const v4 = await h.open(4).connect({ clientId: h.uid(), will });
    assert.equal(v4.reasonCode, 0x05);
    const ok = await h.open(4).connect({ clientId: h.uid(), will: { ...will, topic: '$dev/clients' } });
    assert.equal(ok.reasonCode, 0, 'other $ topics are the tenant’s');
  });

  test('the broker’s own publishes to $SYS still reach $SYS subscribers (the gate is for clients)', async () => {
    const sys = await watcher('$SYS/#');
    h.ts.server.defaultBroker.publish(
      new Message({ topic: '$SYS/broker/version', payload: Buffer.from('pubsub'), qos: 0, retain: false }),
    );
    assert.equal(text(await h.receive(sys)), 'pubsub');
  });
});
