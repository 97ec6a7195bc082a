/**
 * Conformance of normal behaviour, driven over in-memory duplexes (no ports): topic matching,
 * granted QoS, overlapping subscriptions, retained messages and their flags, v5 subscription
 * options, session expiry, wills, ordering, the bounded offline queue, the client's Maximum
 * Packet Size and Receive Maximum, and the re-sending of in-flight state on resume.
 *
 * Each test uses its own client ids and topics. Timing-based tests assert that something did
 * or did not happen within a window with generous slack, never how fast.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { PublishPacket } from '../../src/protocol/index.ts';
import type { Server } from '../../src/server.ts';
import { until } from '../helpers/child-process.ts';
import { harness, type Overrides, pid, text } from '../helpers/v5-harness.ts';
import { expectAck } from '../helpers/wire.ts';

const h = harness('feat');
const { uid, open, connected, subscribe, publish, receive } = h;
const serverWith = async (overrides: Overrides): Promise<Server> => (await h.serverWith(overrides)).server;

describe('topic matching', () => {
  test('$-topics are not matched by filters starting with # or +, but by filters that name them [MQTT-4.7.2-1]', async () => {
    const server = await serverWith({});
    const pub = await connected(4, {}, server);
    await publish(pub, '$dev/retained', 'dev-r', 0, { retain: true });
    await publish(pub, 'plain/retained', 'plain-r', 0, { retain: true });

    const hash = await connected(4, {}, server);
    await subscribe(hash, '#', 0);
    assert.equal(text(await receive(hash)), 'plain-r', '# gets only the non-$ retained message');
    await hash.expectSilence();
    const plus = await connected(4, {}, server);
    await subscribe(plus, '+/retained', 0);
    assert.equal(text(await receive(plus)), 'plain-r');
    await plus.expectSilence();
    const dev = await connected(4, {}, server);
    await subscribe(dev, '$dev/#', 0);
    assert.equal(text(await receive(dev)), 'dev-r', '$dev/# gets the $ retained message');
    await dev.expectSilence();
    const devPlus = await connected(4, {}, server);
    await subscribe(devPlus, '$dev/+', 0);
    assert.equal(text(await receive(devPlus)), 'dev-r');

    await publish(pub, '$dev/live', 'dev-live');
    await publish(pub, 'plain/live', 'plain-live');
    assert.equal(text(await receive(hash)), 'plain-live');
    assert.equal(text(await receive(dev)), 'dev-live');
    assert.equal(text(await receive(devPlus)), 'dev-live');
    await Promise.all([
      hash.expectSilence(),
      plus.expectSilence(),
      dev.expectSilence(),
      devPlus.expectSilence(),
    ]);
  });
});

describe('QoS', () => {
  test('granted QoS is min(requested, maximum QoS) and the v5 CONNACK advertises Maximum QoS 1 [MQTT-3.2.2-9] [MQTT-3.2.2-10] [MQTT-3.8.4-8]', async () => {
    const server = await serverWith({ maximumQoS: 1 });
    const c5 = open(5, server);
    const ack = await c5.connect({ clientId: uid() });
    assert.equal(ack.properties?.maximumQoS, 1);
    assert.deepEqual(await subscribe(c5, 'mq/2', 2), [1]);
    assert.deepEqual(await subscribe(c5, 'mq/1', 1), [1]);
    assert.deepEqual(await subscribe(c5, 'mq/0', 0), [0]);
    const c4 = await connected(4, {}, server);
    assert.deepEqual(await subscribe(c4, 'mq/2', 2), [1]);

    const pub = await connected(5, {}, server);
    await publish(pub, 'mq/2', 'x', 1);
    const got5 = await receive(c5);
    const got4 = await receive(c4);
    assert.equal(got5.qos, 1);
    assert.equal(got4.qos, 1);
    await publish(pub, 'mq/0', 'y', 1);
    assert.equal((await receive(c5)).qos, 0, 'delivered at the granted QoS 0');
  });

  test('overlapping subscriptions deliver one message at the highest granted QoS [MQTT-3.3.5-1]', async () => {
    const sub = await connected(4);
    sub.send({
      type: 'subscribe',
      packetId: pid(),
      subscriptions: [
        { topicFilter: 'ov/+', qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0 },
        { topicFilter: 'ov/#', qos: 2, noLocal: false, retainAsPublished: false, retainHandling: 0 },
      ],
    });
    assert.deepEqual((await sub.expect('suback')).reasonCodes, [0, 2]);
    const pub = await connected(4);
    await publish(pub, 'ov/a', 'once', 2);
    const got = await receive(sub);
    assert.equal(got.qos, 2);
    assert.equal(text(got), 'once');
    await sub.expectSilence(300);
  });

  test('v5 overlapping subscriptions: one message carrying both Subscription Identifiers [MQTT-3.3.4-2] [MQTT-3.3.4-3] [MQTT-3.3.4-4]', async () => {
    const sub = await connected(5);
    assert.deepEqual(await subscribe(sub, 'ov5/+', 1, {}, { subscriptionIdentifiers: [11] }), [1]);
    assert.deepEqual(await subscribe(sub, 'ov5/#', 0, {}, { subscriptionIdentifiers: [22] }), [0]);
    assert.deepEqual(await subscribe(sub, 'ov5/a', 0), [0]);
    const pub = await connected(5);
    await publish(pub, 'ov5/a', 'both', 1);
    const got = await receive(sub);
    assert.equal(got.qos, 1);
    assert.deepEqual(
      [...(got.properties?.subscriptionIdentifiers ?? [])].sort((a, b) => a - b),
      [11, 22],
    );
    await sub.expectSilence(300);
  });
});

describe('retained messages', () => {
  test('a retained message replaces the previous one; a non-retained PUBLISH leaves it [MQTT-3.3.1-5] [MQTT-3.3.1-8]', async () => {
    const pub = await connected(5);
    await publish(pub, 'ret/a', 'one', 1, { retain: true });
    await publish(pub, 'ret/a', 'two', 0, { retain: true });
    await publish(pub, 'ret/a', 'not retained', 1);
    const sub = await connected(5);
    await subscribe(sub, 'ret/a', 1);
    const got = await receive(sub);
    assert.equal(text(got), 'two');
    assert.equal(got.retain, true);
    assert.equal(got.qos, 0, 'the retained QoS is stored with the message');
    await sub.expectSilence();
    await publish(pub, 'ret/a', '', 0, { retain: true });
  });

  test('an empty retained PUBLISH is delivered normally and deletes the retained message [MQTT-3.3.1-6]', async () => {
    const pub = await connected(5);
    await publish(pub, 'ret/del', 'kept', 1, { retain: true });
    const existing = await connected(5);
    await subscribe(existing, 'ret/del', 1);
    assert.equal(text(await receive(existing)), 'kept');
    await publish(pub, 'ret/del', '', 1, { retain: true });
    const live = await receive(existing);
    assert.equal(live.payload.length, 0, 'existing subscribers receive the empty message');
    assert.equal(live.retain, false);
    const later = await connected(5);
    await subscribe(later, 'ret/del', 1);
    await later.expectSilence(300);
    assert.equal(h.ts.server.defaultBroker.retained.get('ret/del'), undefined);
  });

  test('an empty retained PUBLISH is never stored [MQTT-3.3.1-7]', async () => {
    const before = h.ts.server.defaultBroker.retained.size;
    const pub = await connected(5);
    await publish(pub, 'ret/never', '', 1, { retain: true });
    assert.equal(h.ts.server.defaultBroker.retained.size, before);
    assert.equal(h.ts.server.defaultBroker.retained.get('ret/never'), undefined);
    const sub = await connected(5);
    await subscribe(sub, 'ret/never', 1);
    await sub.expectSilence(300);
  });

  test('v3.1.1: retained messages sent on subscribe have RETAIN 1, live ones RETAIN 0 [MQTT-3.3.1-8] [MQTT-3.3.1-9]', async () => {
    const pub = await connected(4);
    await publish(pub, 'rf/a', 'kept', 1, { retain: true });
    const sub = await connected(4);
    await subscribe(sub, 'rf/#', 1);
    const onSubscribe = await receive(sub);
    assert.equal(text(onSubscribe), 'kept');
    assert.equal(onSubscribe.retain, true);
    await publish(pub, 'rf/a', 'live', 1, { retain: true });
    const live = await receive(sub);
    assert.equal(text(live), 'live');
    assert.equal(live.retain, false, 'established subscription: RETAIN 0 even though published retained');
    // Re-subscribing re-sends the retained message, again with RETAIN 1 [MQTT-3.8.4-3] (3.1.1).
    await subscribe(sub, 'rf/#', 1);
    const again = await receive(sub);
    assert.equal(text(again), 'live');
    assert.equal(again.retain, true);
    await publish(pub, 'rf/a', '', 0, { retain: true });
  });
});

describe('v5 subscription options', () => {
  test('Retain As Published keeps the RETAIN flag of live messages; without it RETAIN is 0 [MQTT-3.3.1-12] [MQTT-3.3.1-13]', async () => {
    const asPublished = await connected(5);
    await subscribe(asPublished, 'rap/#', 1, { retainAsPublished: true });
    const cleared = await connected(5);
    await subscribe(cleared, 'rap/#', 1, { retainAsPublished: false });
    const pub = await connected(5);
    await publish(pub, 'rap/x', 'r', 1, { retain: true });
    assert.equal((await receive(asPublished)).retain, true);
    assert.equal((await receive(cleared)).retain, false);
    await publish(pub, 'rap/x', 'n', 1);
    assert.equal((await receive(asPublished)).retain, false, 'a non-retained message stays RETAIN 0');
    assert.equal((await receive(cleared)).retain, false);
    await publish(pub, 'rap/x', '', 0, { retain: true });
  });

  test('No Local: a client does not receive its own messages on that subscription [MQTT-3.8.3-3]', async () => {
    const self = await connected(5);
    await subscribe(self, 'nl/#', 1, { noLocal: true });
    await publish(self, 'nl/x', 'mine', 1);
    await self.expectSilence(300);
    const other = await connected(5);
    await publish(other, 'nl/x', 'theirs', 1);
    assert.equal(text(await receive(self)), 'theirs');
    const echo = await connected(5);
    await subscribe(echo, 'nl/#', 1, { noLocal: false });
    echo.send({
      type: 'publish',
      topic: 'nl/y',
      payload: Buffer.from('echo'),
      qos: 0,
      retain: false,
      dup: false,
    });
    assert.equal(text(await receive(echo)), 'echo', 'without No Local the own message comes back');
    assert.equal(text(await receive(self)), 'echo');
  });

  test('Retain Handling 0 sends retained on every subscribe, 1 only for a new subscription, 2 never [MQTT-3.3.1-9] [MQTT-3.3.1-10] [MQTT-3.3.1-11]', async () => {
    const pub = await connected(5);
    await publish(pub, 'rh/x', 'r', 1, { retain: true });

    const rh0 = await connected(5);
    await subscribe(rh0, 'rh/#', 1, { retainHandling: 0 });
    assert.equal(text(await receive(rh0)), 'r');
    await subscribe(rh0, 'rh/#', 1, { retainHandling: 0 });
    assert.equal(text(await receive(rh0)), 'r', 'sent again on re-subscribe');

    const rh1 = await connected(5);
    await subscribe(rh1, 'rh/#', 1, { retainHandling: 1 });
    assert.equal(text(await receive(rh1)), 'r');
    await subscribe(rh1, 'rh/#', 1, { retainHandling: 1 });
    await rh1.expectSilence(300);

    const rh2 = await connected(5);
    await subscribe(rh2, 'rh/#', 1, { retainHandling: 2 });
    await rh2.expectSilence(300);
    await publish(pub, 'rh/x', 'live', 1);
    assert.equal(text(await receive(rh2)), 'live', 'live messages still flow');
    await publish(pub, 'rh/x', '', 0, { retain: true });
  });

  test('UNSUBSCRIBE answers 0x11 for a filter with no subscription, 0x00 for one removed [MQTT-3.10.4-5]', async () => {
    const c = await connected(5);
    await subscribe(c, 'u/a', 1);
    c.send({ type: 'unsubscribe', packetId: 77, topicFilters: ['u/a', 'u/none'] });
    const ack = await c.expect('unsuback');
    assert.equal(ack.packetId, 77);
    assert.deepEqual(ack.reasonCodes, [0x00, 0x11]);
    const pub = await connected(5);
    await publish(pub, 'u/a', 'gone', 1);
    await c.expectSilence(300);
  });
});

describe('sessions and wills', () => {
  test('a v5 session with Session Expiry Interval 1 is kept across a quick reconnect and gone after it expires [MQTT-3.1.2-23] [MQTT-3.2.2-3]', async () => {
    const id = uid();
    const props = { sessionExpiryInterval: 1 };
    const first = await connected(5, { clientId: id, properties: props });
    await subscribe(first, 'se/#', 1);
    first.send({ type: 'disconnect', reasonCode: 0 });
    await first.closed();

    const quick = h.reopen(first, 5); // on first's node: persistent sessions stay on their node (issue 19)
    const quickAck = await quick.connect({ clientId: id, clean: false, properties: props });
    assert.equal(quickAck.sessionPresent, true, 'resumed within the expiry interval');
    quick.send({ type: 'disconnect', reasonCode: 0 });
    await quick.closed();

    await new Promise((resolve) => setTimeout(resolve, 2200));
    const late = h.reopen(first, 5);
    const lateAck = await late.connect({ clientId: id, clean: false, properties: props });
    assert.equal(lateAck.sessionPresent, false, 'the session expired');
    const pub = await connected(5);
    await publish(pub, 'se/x', 'after expiry', 1);
    await late.expectSilence(300);
  });

  test('a will with Will Delay Interval 1 is published about 1 s after an abrupt close [MQTT-3.1.2-8]', async () => {
    const watcher = await connected(5);
    await subscribe(watcher, 'wd/a', 1);
    const w = await connected(5, {
      properties: { sessionExpiryInterval: 10 },
      will: {
        topic: 'wd/a',
        payload: Buffer.from('late'),
        qos: 1,
        retain: false,
        properties: { willDelayInterval: 1 },
      },
    });
    w.destroy();
    await watcher.expectSilence(600);
    const will = await receive(watcher, 4000);
    assert.equal(text(will), 'late');
  });

  test('a delayed will is not published when the client reconnects within the delay [MQTT-3.1.3-9]', async () => {
    const watcher = await connected(5);
    await subscribe(watcher, 'wd/b', 1);
    const id = uid();
    const w = await connected(5, {
      clientId: id,
      properties: { sessionExpiryInterval: 10 },
      will: {
        topic: 'wd/b',
        payload: Buffer.from('never'),
        qos: 1,
        retain: false,
        properties: { willDelayInterval: 1 },
      },
    });
    w.destroy();
    await new Promise((resolve) => setTimeout(resolve, 200));
    const back = h.reopen(w, 5);
    const ack = await back.connect({ clientId: id, clean: false, properties: { sessionExpiryInterval: 10 } });
    assert.equal(ack.sessionPresent, true);
    await watcher.expectSilence(2000);
    back.send({ type: 'disconnect', reasonCode: 0, properties: { sessionExpiryInterval: 0 } });
    await back.closed();
    await watcher.expectSilence(300);
  });

  test('DISCONNECT with reason 0x04 publishes the will; reason 0x00 discards it [MQTT-3.1.2-10] [section 3.14.2.1]', async () => {
    const watcher = await connected(5);
    await subscribe(watcher, 'wr/#', 1);
    const withWill = await connected(5, {
      will: { topic: 'wr/a', payload: Buffer.from('asked'), qos: 1, retain: false },
    });
    withWill.send({ type: 'disconnect', reasonCode: 0x04 });
    await withWill.closed();
    assert.equal(text(await receive(watcher)), 'asked');
    const normal = await connected(5, {
      will: { topic: 'wr/b', payload: Buffer.from('discarded'), qos: 1, retain: false },
    });
    normal.send({ type: 'disconnect', reasonCode: 0x00 });
    await normal.closed();
    await watcher.expectSilence(300);
  });
});

describe('delivery', () => {
  test('1000 QoS 1 messages from one publisher arrive at a subscriber in order [MQTT-4.6.0-5] [MQTT-4.6.0-6]', async () => {
    const sub = await connected(4);
    await subscribe(sub, 'order/x', 1);
    const pub = await connected(4);
    for (let i = 1; i <= 1000; i++) {
      pub.send({
        type: 'publish',
        topic: 'order/x',
        payload: Buffer.from(String(i)),
        qos: 1,
        retain: false,
        dup: false,
        packetId: i,
      });
    }
    for (let i = 1; i <= 1000; i++) assert.equal(text(await receive(sub, 5000)), String(i));
    for (let i = 1; i <= 1000; i++) assert.equal((await expectAck(pub, 'puback', 5000)).packetId, i);
    await sub.expectSilence();
  });

  test('an offline session queue bounded by maxQueuedMessages drops and counts the excess, then delivers the first N in order (implementation limit)', async () => {
    const server = await serverWith({ maxQueuedMessages: 5 });
    const id = uid();
    const sub = await connected(4, { clientId: id, clean: false }, server);
    await subscribe(sub, 'oq/#', 1);
    sub.send({ type: 'disconnect', reasonCode: 0 });
    await sub.closed();
    const dropped = h.stat('droppedQueueFull', server);
    const pub = await connected(4, {}, server);
    for (let i = 0; i < 8; i++) await publish(pub, 'oq/x', `m${i}`, 1);
    // Across nodes the subscriber's node counts a moment after the publisher's PUBACK.
    await until(() => h.stat('droppedQueueFull', server) - dropped >= 3, 'three dropped');
    assert.equal(h.stat('droppedQueueFull', server) - dropped, 3);
    const back = h.reopen(sub, 4);
    assert.equal((await back.connect({ clientId: id, clean: false })).sessionPresent, true);
    for (let i = 0; i < 5; i++) assert.equal(text(await receive(back)), `m${i}`);
    await back.expectSilence(300);
  });

  test("a PUBLISH larger than a v5 client's Maximum Packet Size is not sent and is counted [MQTT-3.1.2-24] [MQTT-3.1.2-25]", async () => {
    const stats = h.ts.server.defaultBroker.stats;
    const sub = await connected(5, { properties: { maximumPacketSize: 64 } });
    await subscribe(sub, 'big/#', 1);
    const dropped = stats.droppedTooLarge;
    const pub = await connected(5);
    const large = 'x'.repeat(100);
    await publish(pub, 'big/x', large, 1);
    await publish(pub, 'big/x', large, 0);
    await publish(pub, 'big/x', 'small', 1);
    const got = await receive(sub);
    assert.equal(text(got), 'small', 'the oversized messages were skipped, the next one flows');
    await sub.expectSilence();
    assert.equal(stats.droppedTooLarge - dropped, 2);
  });

  test('with a v5 Receive Maximum of 2 the broker never has more than 2 unacknowledged QoS 1 PUBLISHes out [MQTT-3.3.4-9]', async () => {
    const sub = await connected(5, { properties: { receiveMaximum: 2 } });
    await subscribe(sub, 'rm/#', 1);
    const pub = await connected(5);
    for (let i = 0; i < 6; i++) await publish(pub, 'rm/x', `m${i}`, 1);
    const outstanding: PublishPacket[] = [];
    const seen: string[] = [];
    let peak = 0;
    while (seen.length < 6) {
      // Take whatever the broker sends until it goes quiet, then acknowledge the oldest.
      for (;;) {
        const p = await sub.next(200).catch(() => undefined);
        if (p === undefined) break;
        assert.equal(p.type, 'publish');
        outstanding.push(p as PublishPacket);
        peak = Math.max(peak, outstanding.length);
        assert.ok(outstanding.length <= 2, `${outstanding.length} unacknowledged PUBLISHes outstanding`);
      }
      const oldest = outstanding.shift();
      assert.ok(oldest !== undefined, 'the broker sends the next message once one is acknowledged');
      seen.push(text(oldest));
      sub.send({ type: 'puback', packetId: oldest.packetId!, reasonCode: 0 });
    }
    assert.equal(peak, 2, 'the window was used in full');
    assert.deepEqual(seen, ['m0', 'm1', 'm2', 'm3', 'm4', 'm5']);
    await sub.expectSilence();
  });
});

describe('resuming in-flight state', () => {
  for (const version of [4, 5] as const) {
    test(`v${version === 4 ? '3.1.1' : '5'}: an unacknowledged QoS 1 PUBLISH is re-sent on resume with DUP 1 and its packet id [MQTT-4.4.0-1] [MQTT-3.3.1-1]`, async () => {
      const id = uid();
      const session = version === 5 ? { properties: { sessionExpiryInterval: 60 } } : {};
      const sub = await connected(version, { clientId: id, clean: false, ...session });
      await subscribe(sub, `dup${version}/#`, 1);
      const pub = await connected(version);
      await publish(pub, `dup${version}/x`, 'again', 1);
      const first = await sub.expect('publish');
      assert.equal(first.dup, false);
      sub.destroy(); // no PUBACK
      const back = open(version);
      assert.equal((await back.connect({ clientId: id, clean: false, ...session })).sessionPresent, true);
      const resent = await back.expect('publish');
      assert.equal(resent.dup, true);
      assert.equal(resent.packetId, first.packetId);
      assert.equal(text(resent), 'again');
      back.send({ type: 'puback', packetId: resent.packetId!, reasonCode: 0 });
      await back.expectSilence(300);
    });
  }

  test('re-sent in-flight messages respect the Receive Maximum of the new connection [MQTT-3.3.4-9] [section 4.9]', async () => {
    const id = uid();
    const sub = await connected(5, { clientId: id, properties: { sessionExpiryInterval: 60 } });
    await subscribe(sub, 'rmr/#', 1);
    const pub = await connected(5);
    for (let i = 0; i < 5; i++) await publish(pub, 'rmr/x', `m${i}`, 1);
    const originals: PublishPacket[] = [];
    for (let i = 0; i < 5; i++) originals.push(await sub.expect('publish'));
    sub.destroy(); // none acknowledged
    const back = open(5);
    const ack = await back.connect({
      clientId: id,
      clean: false,
      properties: { sessionExpiryInterval: 60, receiveMaximum: 2 },
    });
    assert.equal(ack.sessionPresent, true);
    const seen: PublishPacket[] = [];
    const outstanding: PublishPacket[] = [];
    while (seen.length < 5) {
      for (;;) {
        const p = await back.next(200).catch(() => undefined);
        if (p === undefined) break;
        assert.equal(p.type, 'publish');
        outstanding.push(p as PublishPacket);
        assert.ok(outstanding.length <= 2, `${outstanding.length} unacknowledged PUBLISHes after resume`);
      }
      const oldest = outstanding.shift();
      assert.ok(oldest !== undefined, 'the rest follows as acknowledgements arrive');
      seen.push(oldest);
      back.send({ type: 'puback', packetId: oldest.packetId!, reasonCode: 0 });
    }
    assert.deepEqual(seen.map(text), ['m0', 'm1', 'm2', 'm3', 'm4']);
    assert.deepEqual(
      seen.map((p) => [p.packetId, p.dup]),
      originals.map((p) => [p.packetId, true]),
      'each re-sent with its original packet id and DUP 1 [MQTT-4.4.0-1]',
    );
  });

  test('an in-flight message too large for the resumed connection is dropped, counted, and frees its slot [MQTT-3.1.2-25]', async () => {
    const stats = h.ts.server.defaultBroker.stats;
    const id = uid();
    const sub = await connected(5, { clientId: id, properties: { sessionExpiryInterval: 60 } });
    await subscribe(sub, 'rbig/#', 1);
    const pub = await connected(5);
    await publish(pub, 'rbig/x', 'x'.repeat(100), 1);
    await sub.expect('publish');
    sub.destroy(); // not acknowledged
    const dropped = stats.droppedTooLarge;
    const back = open(5);
    const ack = await back.connect({
      clientId: id,
      clean: false,
      properties: { sessionExpiryInterval: 60, receiveMaximum: 1, maximumPacketSize: 64 },
    });
    assert.equal(ack.sessionPresent, true);
    await publish(pub, 'rbig/x', 'small', 1);
    assert.equal(text(await receive(back)), 'small', 'the window of 1 is not held by the dropped message');
    assert.equal(stats.droppedTooLarge - dropped, 1);
    back.send({ type: 'disconnect', reasonCode: 0, properties: { sessionExpiryInterval: 0 } });
  });

  test('a QoS 2 delivery awaiting PUBCOMP is resumed with PUBREL, not PUBLISH [MQTT-4.4.0-1]', async () => {
    const id = uid();
    const sub = await connected(4, { clientId: id, clean: false });
    await subscribe(sub, 'rel/#', 2);
    const pub = await connected(4);
    await publish(pub, 'rel/x', 'two', 2);
    const p = await sub.expect('publish');
    assert.equal(p.qos, 2);
    sub.send({ type: 'pubrec', packetId: p.packetId!, reasonCode: 0 });
    assert.equal((await expectAck(sub, 'pubrel')).packetId, p.packetId);
    sub.destroy(); // no PUBCOMP
    const back = open(4);
    assert.equal((await back.connect({ clientId: id, clean: false })).sessionPresent, true);
    assert.equal((await expectAck(back, 'pubrel')).packetId, p.packetId);
    back.send({ type: 'pubcomp', packetId: p.packetId!, reasonCode: 0 });
    await back.expectSilence(300);
  });
});
