/**
 * Shared subscriptions `$share/{group}/{filter}` (section 4.8.2): one member per message by the
 * configured strategy, no retained messages on subscribe, a leaving member's unfinished QoS 1/2
 * messages handed to another member, share-name validation (0x8F) and the disabled feature
 * (CONNACK Shared Subscription Available 0, DISCONNECT 0x9E). Packet-level clients, literal
 * bytes where the answer is bytes, and MQTT.js for a client's view.
 *
 * On a two-node cluster (test/cluster/conformance.test.ts) the members sit on both nodes, and
 * the turn runs over the publishing node's members first (src/cluster/shared-dispatch.ts): so
 * the cases ask which member a message went to rather than assume the joining order, except
 * the one that checks that order on one node.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import mqtt from 'mqtt';
import type { PublishPacket } from '../../src/protocol/index.ts';
import { until } from '../helpers/child-process.ts';
import type { RawClient } from '../helpers/raw-client.ts';
import { CLUSTER_MODE, harness, text } from '../helpers/v5-harness.ts';
import { connackProperties, connectV5, packet, str, Wire } from '../helpers/wire.ts';

const h = harness('shared');

/** Every PUBLISH each client receives until all go quiet, acknowledged. */
async function drain(clients: RawClient[], quietMs = 300): Promise<string[][]> {
  return Promise.all(
    clients.map(async (c) => {
      const got: string[] = [];
      for (;;) {
        const p = await c.next(quietMs).catch(() => undefined);
        if (p === undefined) return got;
        assert.equal(p.type, 'publish');
        const pub = p as PublishPacket;
        if (pub.qos === 1) c.send({ type: 'puback', packetId: pub.packetId!, reasonCode: 0 });
        got.push(text(pub));
      }
    }),
  );
}

/** The member the message `payload` went to (its first packet), and the other members. */
async function holder(members: RawClient[], payload: string): Promise<[RawClient, RawClient[]]> {
  const has = (m: RawClient): boolean =>
    m.received.some((p) => p.type === 'publish' && text(p as PublishPacket) === payload);
  await until(() => members.some(has), `a member to receive ${payload}`);
  const member = members.find(has)!;
  return [member, members.filter((m) => m !== member)];
}

/** Shared messages handed to another member, on every node of the file's server. */
const redelivered = (): number =>
  h.nodes().reduce((n, server) => n + server.tenancy.defaultTenant()!.broker.stats.sharedRedelivered, 0);

describe('shared subscriptions: which member gets a message', () => {
  test('round-robin (default): each message goes to exactly one member, in turn [MQTT-4.8.2-4]', async () => {
    const members = [await h.connected(5), await h.connected(5), await h.connected(4)];
    for (const m of members) assert.deepEqual(await h.subscribe(m, '$share/rr/sh/rr', 1), [1]);
    const pub = await h.connected(5);
    for (let i = 0; i < 6; i++) await h.publish(pub, 'sh/rr', `m${i}`, 1);
    const got = await drain(members);
    if (!CLUSTER_MODE)
      assert.deepEqual(got, [
        ['m0', 'm3'],
        ['m1', 'm4'],
        ['m2', 'm5'],
      ]);
    // Across nodes the turn's order is the publishing node's (see the header); still in turn.
    const turns = got.map((g) => Number(g[0]?.slice(1))).sort();
    assert.deepEqual(turns, [0, 1, 2], `one of the first three each: ${JSON.stringify(got)}`);
    for (const g of got) assert.deepEqual(g, [g[0], `m${Number(g[0]!.slice(1)) + 3}`]);
  });

  test('random strategy: every message reaches exactly one member', async () => {
    const s = await h.serverWith({ sharedSubscriptionStrategy: 'random' });
    const members = [await h.connected(5, {}, s.server), await h.connected(5, {}, s.server)];
    for (const m of members) await h.subscribe(m, '$share/rnd/sh/rnd', 1);
    const pub = await h.connected(5, {}, s.server);
    for (let i = 0; i < 40; i++) await h.publish(pub, 'sh/rnd', `m${i}`, 1);
    const got = await drain(members);
    assert.deepEqual(
      got.flat().sort(),
      Array.from({ length: 40 }, (_, i) => `m${i}`).sort(),
      'no message lost or duplicated',
    );
    assert.ok(got[0]!.length > 0 && got[1]!.length > 0, `both members used: ${got.map((g) => g.length)}`);
  });

  test("publisher-hash strategy: one publisher's messages stay on one member, in order", async () => {
    const s = await h.serverWith({ sharedSubscriptionStrategy: 'publisher-hash' });
    const members = [];
    for (let i = 0; i < 3; i++) {
      const m = await h.connected(5, {}, s.server);
      await h.subscribe(m, '$share/ph/sh/ph', 1);
      members.push(m);
    }
    const pubs = [];
    for (let p = 0; p < 4; p++) pubs.push(await h.connected(5, { clientId: `ph-publisher-${p}` }, s.server));
    for (let i = 0; i < 5; i++)
      for (let p = 0; p < 4; p++) await h.publish(pubs[p]!, 'sh/ph', `p${p}-${i}`, 1);
    const got = await drain(members);
    for (let p = 0; p < 4; p++) {
      const holders = got.filter((g) => g.some((m) => m.startsWith(`p${p}-`)));
      assert.equal(holders.length, 1, `publisher ${p} spread over ${holders.length} members`);
      assert.deepEqual(
        holders[0]!.filter((m) => m.startsWith(`p${p}-`)),
        [0, 1, 2, 3, 4].map((i) => `p${p}-${i}`),
      );
    }
  });

  test('a disconnected member is skipped while a connected one exists', async () => {
    const offline = await h.connected(5, { clientId: h.uid(), properties: { sessionExpiryInterval: 60 } });
    await h.subscribe(offline, '$share/off/sh/off', 1);
    const online = await h.connected(5);
    await h.subscribe(online, '$share/off/sh/off', 1);
    offline.send({ type: 'disconnect', reasonCode: 0 });
    await offline.closed();
    const pub = await h.connected(5);
    for (let i = 0; i < 4; i++) await h.publish(pub, 'sh/off', `m${i}`, 1);
    assert.deepEqual((await drain([online]))[0], ['m0', 'm1', 'm2', 'm3']);
  });

  test('no retained messages are sent when a shared subscription is made (section 4.8.2)', async () => {
    const pub = await h.connected(5);
    await h.publish(pub, 'sh/ret', 'kept', 1, { retain: true });
    const member = await h.connected(5);
    assert.deepEqual(await h.subscribe(member, '$share/ret/sh/ret', 1), [1]);
    await member.expectSilence(300);
    const plain = await h.connected(5);
    await h.subscribe(plain, 'sh/ret', 1);
    assert.equal(text(await h.receive(plain)), 'kept', 'the retained message exists');
    await h.publish(pub, 'sh/ret', '', 0, { retain: true });
  });
});

describe('shared subscriptions: a member that leaves', () => {
  test('unacknowledged QoS 1 of a member whose session ends goes to another member (section 4.8.2)', async () => {
    const members = [await h.connected(5), await h.connected(5)];
    for (const m of members) await h.subscribe(m, '$share/lv/sh/lv', 1);
    const pub = await h.connected(5);
    const before = redelivered();
    await h.publish(pub, 'sh/lv', 'unacked', 1);
    const [first, [second]] = await holder(members, 'unacked');
    assert.equal(text(await first.expect('publish')), 'unacked');
    first.destroy(); // no PUBACK; Session Expiry 0: the session ends with the connection
    const again = await h.receive(second!);
    assert.equal(text(again), 'unacked');
    assert.equal(redelivered() - before, 1);
    await second!.expectSilence(300);
  });

  test('a QoS 2 message the leaving member acknowledged with PUBREC is not delivered again', async () => {
    const members = [await h.connected(5), await h.connected(5)];
    for (const m of members) await h.subscribe(m, '$share/lv2/sh/lv2', 2);
    const pub = await h.connected(5);
    await h.publish(pub, 'sh/lv2', 'arrived', 2);
    const [first, [second]] = await holder(members, 'arrived');
    const p = await first.expect('publish');
    first.send({ type: 'pubrec', packetId: p.packetId!, reasonCode: 0 });
    await first.expect('pubrel');
    first.destroy(); // no PUBCOMP
    await second!.expectSilence(500);
  });

  test('a QoS 2 message sent to a member whose session ends before PUBREC goes to no other member [MQTT-4.8.2-5]', async () => {
    const members = [await h.connected(5), await h.connected(5)];
    for (const m of members) await h.subscribe(m, '$share/lv3/sh/lv3', 2);
    const pub = await h.connected(5);
    await h.publish(pub, 'sh/lv3', 'sent', 2);
    const [first, [second]] = await holder(members, 'sent');
    assert.equal(text(await first.expect('publish')), 'sent');
    first.destroy(); // no PUBREC; Session Expiry 0: the session ends with the connection
    await second!.expectSilence(500);
    await h.publish(pub, 'sh/lv3', 'next', 2); // the group still works: the one member left gets it
    assert.equal(text(await h.receive(second!)), 'next');
  });

  test('messages queued for a member that disconnects go to a connected member; its in-flight one waits for its return', async () => {
    const id = h.uid();
    const session = { sessionExpiryInterval: 60 };
    const slow = await h.connected(5, { clientId: id, properties: { ...session, receiveMaximum: 1 } });
    await h.subscribe(slow, '$share/q/sh/q', 1);
    const fast = await h.connected(5);
    await h.subscribe(fast, '$share/q/sh/q', 1);
    const pub = await h.connected(5);
    // Round robin: slow's first (in flight, never acknowledged), fast's, slow's second (queued:
    // window 1), fast's. On one node slow's turn comes first (m0); across nodes it may be m1.
    for (let i = 0; i < 4; i++) await h.publish(pub, 'sh/q', `m${i}`, 1);
    const inflight = await slow.expect('publish');
    const k = Number(text(inflight).slice(1));
    assert.equal(k, CLUSTER_MODE ? k : 0);
    assert.deepEqual((await drain([fast]))[0], k === 0 ? ['m1', 'm3'] : ['m0', 'm2']);
    slow.destroy();
    assert.deepEqual(
      (await drain([fast]))[0],
      [`m${k + 2}`],
      'the queued message moved to the connected member',
    );
    const back = h.reopen(slow, 5);
    assert.equal(
      (await back.connect({ clientId: id, clean: false, properties: session })).sessionPresent,
      true,
    );
    const resent = await back.expect('publish');
    assert.equal(text(resent), `m${k}`);
    assert.equal(resent.dup, true);
    back.send({ type: 'puback', packetId: resent.packetId!, reasonCode: 0 });
    back.send({ type: 'disconnect', reasonCode: 0, properties: { sessionExpiryInterval: 0 } });
  });

  test('UNSUBSCRIBE hands queued messages to another member and completes in-flight ones [MQTT-3.10.4-3]', async () => {
    const window1 = { properties: { receiveMaximum: 1 } };
    const members = [await h.connected(5, window1), await h.connected(5, window1)];
    for (const m of members) await h.subscribe(m, '$share/un/sh/un', 1);
    const pub = await h.connected(5);
    // Round robin: m0 and m2 to the member that gets m0 (m2 queued behind m0: window 1), m1 to the other.
    for (let i = 0; i < 3; i++) await h.publish(pub, 'sh/un', `m${i}`, 1);
    const [leaving, [staying]] = await holder(members, 'm0');
    const p = await leaving.expect('publish');
    assert.equal(text(p), 'm0');
    assert.deepEqual((await drain([staying!]))[0], ['m1']);
    leaving.send({ type: 'unsubscribe', packetId: 9, topicFilters: ['$share/un/sh/un'] });
    assert.deepEqual((await leaving.expect('unsuback')).reasonCodes, [0]);
    assert.deepEqual((await drain([staying!]))[0], ['m2']);
    leaving.send({ type: 'puback', packetId: p.packetId!, reasonCode: 0 });
    await leaving.expectSilence(300);
  });
});

describe('shared subscriptions: share names and availability', () => {
  test('an invalid share name or filter fails that filter alone with SUBACK 0x8F [MQTT-4.8.2-1] [MQTT-4.8.2-2]', async () => {
    const c = await h.connected(5);
    const bad = ['$share//a', '$share/g+/a', '$share/g#/a', '$share/g', '$share/g/', '$share/g/a#'];
    c.send({
      type: 'subscribe',
      packetId: 3,
      subscriptions: ['$share/ok/a', ...bad].map((topicFilter) => ({
        topicFilter,
        qos: 1,
        noLocal: false,
        retainAsPublished: false,
        retainHandling: 0,
      })),
    });
    const ack = await c.expect('suback');
    assert.deepEqual(ack.reasonCodes, [1, ...bad.map(() => 0x8f)]);
    assert.match(ack.properties?.reasonString ?? '', /invalid topic filter/);
    const v3 = await h.connected(4);
    assert.deepEqual(await h.subscribe(v3, '$share//a', 1), [0x80], 'v3.1.1: 0x80');
  });

  test('disabled: CONNACK says Shared Subscription Available 0 and a $share SUBSCRIBE gets DISCONNECT 0x9E (section 3.2.2.3.15)', async (t) => {
    const s = await h.serverWith({ sharedSubscriptionsAvailable: false });
    const w = await Wire.tcp(s.port, 5);
    t.after(() => w.destroy());
    const ack = await w.handshake(connectV5(h.uid()));
    assert.deepEqual(connackProperties(ack).get(0x2a), [0x00]);
    // SUBSCRIBE id 1, no properties, "$share/g/a" QoS 1
    w.send(packet(0x82, [0x00, 0x01, 0x00, ...str('$share/g/a'), 0x01]));
    await w.expectDisconnect(0x9e);
    const v3 = await h.connected(4, {}, s.server);
    assert.deepEqual(await h.subscribe(v3, '$share/g/a', 1), [0x80], 'v3.1.1 was told nothing: SUBACK 0x80');
  });
});

describe('shared subscriptions with MQTT.js', () => {
  test('two MQTT.js v5 members of one group split the messages between them, none twice', async (t) => {
    const opts = { protocolVersion: 5 as const, reconnectPeriod: 0 };
    const a = await mqtt.connectAsync(h.ts.url, opts);
    const b = await mqtt.connectAsync(h.ts.url, opts);
    const pub = await mqtt.connectAsync(h.ts.url, opts);
    t.after(() => Promise.all([a, b, pub].map((c) => c.endAsync(true))));
    const got: Record<string, string[]> = { a: [], b: [] };
    a.on('message', (_t, p) => got.a!.push(p.toString()));
    b.on('message', (_t, p) => got.b!.push(p.toString()));
    await a.subscribeAsync('$share/js/sh/js', { qos: 1 });
    await b.subscribeAsync('$share/js/sh/js', { qos: 1 });
    for (let i = 0; i < 10; i++) await pub.publishAsync('sh/js', `m${i}`, { qos: 1 });
    const deadline = Date.now() + 5000;
    while (got.a!.length + got.b!.length < 10 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual([...got.a!, ...got.b!].sort(), Array.from({ length: 10 }, (_, i) => `m${i}`).sort());
    assert.equal(got.a!.length, 5);
    assert.equal(got.b!.length, 5);
  });

  // Issue 20 measured `$share` churn from outside and it held; this repeats it, bounded.
  for (const protocolVersion of [4, 5] as const) {
    test(`v${protocolVersion === 5 ? '5' : '3.1.1'}: 500 rounds of joining and leaving 100 groups leave nothing behind; a group made after them delivers each message once`, async (t) => {
      const opts = { protocolVersion, reconnectPeriod: 0 };
      const churner = await mqtt.connectAsync(h.ts.url, opts);
      const pub = await mqtt.connectAsync(h.ts.url, opts);
      t.after(() => Promise.all([churner, pub].map((c) => c.endAsync(true))));
      const index = h.ts.server.defaultBroker.index;
      const before = index.size;
      const level = `churn${protocolVersion}`;
      for (let round = 0; round < 500; round++) {
        const filter = `$share/g${round % 100}/${level}/${round}/#`;
        const granted = await churner.subscribeAsync(filter, { qos: 1 });
        assert.equal(granted[0]!.qos, 1);
        await churner.unsubscribeAsync(filter);
      }
      assert.equal(index.size, before, 'every member gone');
      assert.equal(index.hasFirstLevel(level), false, 'every node pruned');

      const got: string[] = [];
      churner.on('message', (_t, p) => got.push(p.toString()));
      await churner.subscribeAsync(`$share/after/${level}/x`, { qos: 1 });
      for (let i = 0; i < 5; i++) await pub.publishAsync(`${level}/x`, `m${i}`, { qos: 1 });
      await until(() => got.length >= 5, 'the 5 messages');
      assert.deepEqual(got, ['m0', 'm1', 'm2', 'm3', 'm4']);
    });
  }
});
