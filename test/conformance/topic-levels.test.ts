/**
 * The topic-level limit (`--max-topic-levels`) and very deep topics, over TCP.
 *
 * Refusals as literal bytes, v5 and v3.1.1, on a server whose limit is 3 so that the packets
 * stay readable: a SUBSCRIBE filter over it fails alone (SUBACK 0x8F / 0x80), a PUBLISH topic
 * over it is PUBACK/PUBREC 0x90 (v5 QoS 1/2), DISCONNECT 0x90 (v5 QoS 0) or a close (v3.1.1),
 * and counted; a will topic over it is CONNACK 0x90 (v5) or a close without CONNACK (v3.1.1);
 * an UNSUBSCRIBE of such a filter is answered and the connection stays. The default limit (200)
 * is checked at its edge. Then the limit raised to its maximum: topics of 65,536 levels and
 * filters of 32,768 `+` levels are routed, shared and retained without recursion, and seeded
 * deep and wide topics go through both a raised and a default server. Each test ends with a
 * QoS 1 round trip to a bystander subscribed throughout.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import type { ProtocolVersion, QoS } from '../../src/protocol/index.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { Rng } from '../helpers/rng.ts';
import { startServer, type TestServer } from '../helpers/server.ts';
import {
  assertBrokerHealthy,
  connectBystander,
  connectV4,
  connectV5,
  type Frame,
  packet,
  str,
  Wire,
} from '../helpers/wire.ts';

type After = { after: (fn: () => Promise<void> | void) => void };

let ts: TestServer;
let bystander: RawClient;
let ids = 0;
const nextId = (): string => `levels-${process.pid}-${++ids}`;

before(async () => {
  ts = await startServer({ maxTopicLevels: 3 });
  bystander = await connectBystander(ts.port);
});
after(async () => {
  bystander?.destroy();
  await ts?.close();
});

async function connected(t: After, version: 4 | 5, port = ts.port): Promise<Wire> {
  const w = await Wire.tcp(port, version);
  t.after(() => w.destroy());
  await w.handshake(version === 5 ? connectV5(nextId()) : connectV4(nextId()));
  return w;
}

/** The bytes of a v5 acknowledgement's body after its packet id and property block. */
function afterProperties(f: Frame, from: number): number[] {
  let pos = from;
  let length = 0;
  for (let shift = 0; ; shift += 7) {
    const b = f.body[pos++]!;
    length += (b & 0x7f) << shift;
    if ((b & 0x80) === 0) break;
  }
  return [...f.body.subarray(pos + length)];
}

/** A subscriber to `#` on the shared server: what reaches it shows what was routed. */
async function watcher(t: After): Promise<RawClient> {
  const c = await RawClient.tcp(ts.port, 5);
  t.after(() => c.destroy());
  await c.connect({ clientId: nextId(), keepalive: 0 });
  c.send({
    type: 'subscribe',
    packetId: 1,
    subscriptions: [
      { topicFilter: '#', qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 2 },
    ],
  });
  assert.deepEqual((await c.expect('suback')).reasonCodes, [0]);
  return c;
}

const droppedTopicLevels = (server = ts): number => server.server.defaultBroker.stats.droppedTopicLevels;

describe('--max-topic-levels refusals, literal bytes (limit 3)', () => {
  test('SUBSCRIBE: a filter over the limit fails alone, v5 SUBACK 0x8F, v3.1.1 0x80; $share/{name}/ is not counted', async (t) => {
    const filters = [...str('a/b/c'), 0x00, ...str('a/b/c/d'), 0x00, ...str('$share/g/+/+/#'), 0x00];
    filters.push(...str('$share/g/+/+/+/#'), 0x00);
    const v5 = await connected(t, 5);
    v5.send(packet(0x82, [0x00, 0x01, 0x00, ...filters])); // SUBSCRIBE id 1, property length 0
    const ack5 = await v5.frame();
    assert.equal(ack5.first, 0x90);
    assert.deepEqual([...ack5.body.subarray(0, 2)], [0x00, 0x01]);
    assert.deepEqual(afterProperties(ack5, 2), [0x00, 0x8f, 0x00, 0x8f]); // section 3.9.3
    await v5.expectAlive();
    const v4 = await connected(t, 4);
    v4.send(packet(0x82, [0x00, 0x02, ...filters])); // SUBSCRIBE id 2
    const ack4 = await v4.frame();
    assert.deepEqual([ack4.first, ...ack4.body], [0x90, 0x00, 0x02, 0x00, 0x80, 0x00, 0x80]); // [MQTT-3.9.3-2]
    await v4.expectAlive();
    await assertBrokerHealthy(ts.port, bystander);
  });

  test('PUBLISH QoS 1/2 over the limit: v5 PUBACK/PUBREC 0x90, the connection stays, nothing routed, counted', async (t) => {
    const watch = await watcher(t);
    const before = droppedTopicLevels();
    const v5 = await connected(t, 5);
    v5.send(packet(0x32, [...str('a/b/c/d'), 0x00, 0x07, 0x00, 0x78])); // QoS 1, id 7, no properties, "x"
    const puback = await v5.frame();
    assert.equal(puback.first, 0x40);
    assert.deepEqual([...puback.body.subarray(0, 3)], [0x00, 0x07, 0x90]);
    v5.send(packet(0x34, [...str('a/b/c/d'), 0x00, 0x08, 0x00, 0x78])); // QoS 2, id 8
    const pubrec = await v5.frame();
    assert.equal(pubrec.first, 0x50);
    assert.deepEqual([...pubrec.body.subarray(0, 3)], [0x00, 0x08, 0x90]);
    await v5.expectAlive();
    assert.equal(droppedTopicLevels(), before + 2);
    v5.send(packet(0x30, [...str('a/b/c'), 0x00, 0x79])); // QoS 0 at the limit: routed
    const got = await watch.expect('publish');
    assert.equal(got.topic, 'a/b/c', 'the refused messages were not routed');
    await assertBrokerHealthy(ts.port, bystander);
  });

  test('PUBLISH QoS 0 over the limit: v5 DISCONNECT 0x90; v3.1.1 QoS 0 and 1: close; counted', async (t) => {
    const watch = await watcher(t);
    const before = droppedTopicLevels();
    const v5 = await connected(t, 5);
    v5.send(packet(0x30, [...str('a/b/c/d'), 0x00, 0x78])); // QoS 0, no properties, "x"
    await v5.expectDisconnect(0x90); // section 3.14.2.1
    const v4 = await connected(t, 4);
    v4.send(packet(0x30, [...str('a/b/c/d'), 0x78])); // QoS 0
    await v4.expectSilentClose();
    const v4q1 = await connected(t, 4);
    v4q1.send(packet(0x32, [...str('/b/c/d'), 0x00, 0x07, 0x78])); // QoS 1, id 7: levels '', b, c, d
    await v4q1.expectSilentClose();
    assert.equal(droppedTopicLevels(), before + 3);
    await watch.expectSilence();
    await assertBrokerHealthy(ts.port, bystander);
  });

  test('a will topic over the limit: v5 CONNACK 0x90, v3.1.1 close without CONNACK; at the limit accepted', async (t) => {
    const will = (version: 4 | 5, topic: string): number[] =>
      packet(0x10, [
        ...str('MQTT'),
        version,
        0x06, // Clean Start, Will Flag, will QoS 0
        0x00,
        0x3c, // keep alive 60
        ...(version === 5 ? [0x00] : []), // property length 0
        ...str(nextId()),
        ...(version === 5 ? [0x00] : []), // will property length 0
        ...str(topic),
        ...str('gone'), // will payload
      ]);
    const v5 = await Wire.tcp(ts.port, 5);
    t.after(() => v5.destroy());
    v5.send(will(5, 'a/b/c/d'));
    const connack = await v5.frame();
    assert.equal(connack.first, 0x20);
    assert.deepEqual([...connack.body.subarray(0, 2)], [0x00, 0x90]); // section 3.2.2.2
    await v5.client.closed();
    const v4 = await Wire.tcp(ts.port, 4);
    t.after(() => v4.destroy());
    v4.send(will(4, 'a/b/c/d'));
    await v4.expectSilentClose(); // 3.1.1 CONNACK has no code for it
    for (const version of [4, 5] as const) {
      const ok = await Wire.tcp(ts.port, version);
      t.after(() => ok.destroy());
      await ok.handshake(will(version, 'a/b/c'));
    }
    await assertBrokerHealthy(ts.port, bystander);
  });

  // The filter is well formed, so a v3.1.1 client must get its UNSUBACK [MQTT-3.10.4-4], not a
  // close: the guard for a level check in UNSUBSCRIBE that took it for an invalid filter.
  test('UNSUBSCRIBE of a filter over the limit is answered with UNSUBACK; the connection stays', async (t) => {
    const v5 = await connected(t, 5);
    v5.send(packet(0xa2, [0x00, 0x09, 0x00, ...str('+/+/+/#')])); // UNSUBSCRIBE id 9, property length 0
    const ack5 = await v5.frame();
    assert.equal(ack5.first, 0xb0);
    assert.deepEqual([...ack5.body.subarray(0, 2)], [0x00, 0x09]);
    assert.equal(afterProperties(ack5, 2).length, 1, 'one reason code');
    await v5.expectAlive();
    const v4 = await connected(t, 4);
    v4.send(packet(0xa2, [0x00, 0x09, ...str('+/+/+/#')]));
    const ack4 = await v4.frame();
    assert.deepEqual([ack4.first, ...ack4.body], [0xb0, 0x00, 0x09]); // [MQTT-3.10.4-4]
    await v4.expectAlive();
    await assertBrokerHealthy(ts.port, bystander);
  });
});

const levels = (n: number): string => Array.from({ length: n }, (_, i) => `l${i}`).join('/');

async function client(t: After, port: number, version: ProtocolVersion): Promise<RawClient> {
  const c = await RawClient.tcp(port, version);
  t.after(() => c.destroy());
  const ack = await c.connect({ clientId: nextId(), keepalive: 0 });
  assert.equal(ack.reasonCode, 0);
  return c;
}

async function subscribe(c: RawClient, filters: string[], qos: QoS = 1): Promise<number[]> {
  c.send({
    type: 'subscribe',
    packetId: 1,
    subscriptions: filters.map((topicFilter) => ({
      topicFilter,
      qos,
      noLocal: false,
      retainAsPublished: false,
      retainHandling: 0 as const,
    })),
  });
  return (await c.expect('suback', 10_000)).reasonCodes;
}

/** A QoS 1 PUBLISH and its PUBACK's reason code (0 for v3.1.1). */
async function publish1(c: RawClient, topic: string, retain = false): Promise<number> {
  c.send({ type: 'publish', topic, payload: Buffer.from('deep'), qos: 1, retain, dup: false, packetId: 3 });
  const ack = await c.next(10_000);
  if (ack.type !== 'puback') assert.fail(`expected PUBACK, got ${JSON.stringify(ack).slice(0, 200)}`);
  return ack.reasonCode;
}

describe('the default limit, 200 levels', () => {
  test('200 levels are subscribed and published; 201 are refused (SUBACK 0x8F, PUBACK 0x90)', async (t) => {
    const server = await startServer();
    t.after(() => server.close());
    const sub = await client(t, server.port, 5);
    const pub = await client(t, server.port, 5);
    assert.deepEqual(
      await subscribe(sub, [levels(200), levels(201), `${levels(199)}/#`, `${levels(200)}/#`]),
      [1, 0x8f, 1, 0x8f],
    );
    assert.equal(await publish1(pub, levels(200)), 0);
    assert.equal((await sub.expect('publish')).topic, levels(200)); // one delivery for two filters
    assert.equal(await publish1(pub, levels(201)), 0x90);
    assert.equal(server.server.defaultBroker.stats.droppedTopicLevels, 1);
    await sub.expectSilence();
  });
});

/** 65,535 bytes of `/`: the longest topic name, 65,536 empty levels. */
const DEEPEST = '/'.repeat(65_535);
/** 32,767 `+/` and a last `+`: 65,535 bytes, 32,768 levels. */
const DEEP_PLUS = `${'+/'.repeat(32_767)}+`;
const HALF = '/'.repeat(32_767); // 32,768 levels, matched by DEEP_PLUS
/** 16,000 `+` levels then 16,768 empty ones: a 32,768-level filter that fits after `$share/{name}/`. */
const SHARED_HALF = `${'+/'.repeat(16_000)}${'/'.repeat(16_767)}`;

describe('the limit raised to 65,536: deep topics are matched without recursion', () => {
  let deep: TestServer;
  let deepBystander: RawClient;
  before(async () => {
    deep = await startServer({ maxTopicLevels: 65_536, maxTopicLength: 65_535 });
    deepBystander = await connectBystander(deep.port);
  });
  after(async () => {
    deepBystander?.destroy();
    await deep?.close();
  });

  for (const version of [4, 5] as const) {
    test(`v${version === 5 ? 5 : '3.1.1'}: 65,536- and 32,768-level topics reach #, deep + and exact filters and a shared group, once each`, async (t) => {
      const sub = await client(t, deep.port, version);
      const member = await client(t, deep.port, version);
      const pub = await client(t, deep.port, version);
      assert.deepEqual(
        await subscribe(sub, ['#', DEEP_PLUS, DEEPEST, `${'+/'.repeat(32_767)}#`]),
        [1, 1, 1, 1],
      );
      assert.deepEqual(await subscribe(member, [`$share/g${version}/${SHARED_HALF}`]), [1]);
      for (const topic of [DEEPEST, HALF]) {
        assert.equal(await publish1(pub, topic), 0);
        const got = await sub.expect('publish', 10_000);
        assert.equal(got.topic, topic);
        sub.send({ type: 'puback', packetId: got.packetId!, reasonCode: 0 });
      }
      const shared = await member.expect('publish', 10_000);
      assert.equal(shared.topic, HALF, 'the shared group matched the 32,768-level topic only');
      member.send({ type: 'puback', packetId: shared.packetId!, reasonCode: 0 });
      await sub.expectSilence();
      await member.expectSilence();
      await assertBrokerHealthy(deep.port, deepBystander);
    });
  }

  test('retained messages 65,536 and 32,768 levels deep are found by deep wildcard subscriptions', async (t) => {
    const pub = await client(t, deep.port, 5);
    const watch = await client(t, deep.port, 5);
    assert.deepEqual(await subscribe(watch, ['#']), [1]);
    for (const topic of [DEEPEST, HALF]) {
      assert.equal(await publish1(pub, topic, true), 0);
      const got = await watch.expect('publish', 10_000);
      watch.send({ type: 'puback', packetId: got.packetId!, reasonCode: 0 });
    }
    for (const version of [4, 5] as const) {
      const sub = await client(t, deep.port, version);
      assert.deepEqual(await subscribe(sub, [`${'+/'.repeat(32_767)}#`]), [1]);
      const found = new Set<string>();
      for (let i = 0; i < 2; i++) {
        const got = await sub.expect('publish', 10_000);
        assert.ok(got.retain);
        found.add(got.topic);
        sub.send({ type: 'puback', packetId: got.packetId!, reasonCode: 0 });
      }
      assert.deepEqual(found, new Set([DEEPEST, HALF]));
      assert.deepEqual(await subscribe(sub, [DEEP_PLUS]), [1]);
      assert.equal((await sub.expect('publish', 10_000)).topic, HALF);
    }
    for (const topic of [DEEPEST, HALF]) {
      pub.send({ type: 'publish', topic, payload: Buffer.alloc(0), qos: 0, retain: true, dup: false });
    }
    pub.send({ type: 'pingreq' });
    await pub.expect('pingresp', 10_000); // the deletions were read
    await assertBrokerHealthy(deep.port, deepBystander);
    assert.equal(deep.server.defaultBroker.retained.size, 0, 'the empty retained messages deleted both');
  });
});

/**
 * Seeded deep and wide topics: 65,535-byte topics of empty or short levels, `+`-filters and
 * `#`-filters as deep, and 2,000 siblings under one level, against a server with the limit
 * raised (everything routes) and one at the default (everything deep is refused as documented).
 */
function deepTopic(rng: Rng): string {
  const level = rng.pick(['', 'a', 'zz']);
  const maxLevels = Math.floor(65_535 / (level.length + 1));
  const n = rng.pick([201, 4_096, maxLevels]);
  return Array.from({ length: n }, () => level).join('/');
}

describe('seeded deep and wide topics', () => {
  for (const raised of [true, false]) {
    test(`against subscriptions that match them, limit ${raised ? '65,536: all routed' : '200: all refused'}`, async (t) => {
      const errors: string[] = [];
      const logger = pino({ level: 'error' }, { write: (line: string) => void errors.push(line) });
      const server = await startServer(
        raised ? { maxTopicLevels: 65_536, maxTopicLength: 65_535 } : { maxTopicLength: 65_535 },
        { logger },
      );
      t.after(() => server.close());
      const others = await connectBystander(server.port);
      t.after(() => others.destroy());
      const rng = new Rng(raised ? 0xdee9 : 0xdee8);
      const sub = await client(t, server.port, 5);
      const pub = await client(t, server.port, 5);
      const v3 = await client(t, server.port, 4);
      const topics = Array.from({ length: 12 }, () => deepTopic(rng));
      // Over 200 levels each, so all are refused at the default; none matches `wide/...`.
      const filters = topics.map((topic) => {
        const parts = topic.split('/');
        const cut = 200 + rng.int(parts.length - 200);
        // `+` for an empty level adds a byte: replace no more levels than the 65,535 bytes allow.
        const end = parts[0] === '' ? cut + 65_535 - topic.length : parts.length;
        return rng.chance(0.5)
          ? parts.map((p, i) => (i >= cut && i < end ? '+' : p)).join('/')
          : [...parts.slice(0, cut), '#'].join('/');
      });
      const codes = await subscribe(sub, filters);
      assert.deepEqual(
        codes,
        filters.map(() => (raised ? 1 : 0x8f)),
      );
      for (let i = 0; i < 2_000; i++) {
        pub.send({
          type: 'publish',
          topic: `wide/${i}`,
          payload: Buffer.from('w'),
          qos: 0,
          retain: true,
          dup: false,
        });
      }
      assert.deepEqual(await subscribe(sub, ['wide/+'], 0), [0]);
      for (let i = 0; i < 2_000; i++) assert.equal((await sub.expect('publish', 10_000)).topic, `wide/${i}`);
      for (const topic of topics) {
        const code = await publish1(pub, topic);
        assert.equal(code, raised ? 0 : 0x90);
        if (raised) {
          const got = await sub.expect('publish', 10_000);
          assert.equal(got.topic, topic);
          sub.send({ type: 'puback', packetId: got.packetId!, reasonCode: 0 });
        }
      }
      await sub.expectSilence();
      v3.send({
        type: 'publish',
        topic: topics[0]!,
        payload: Buffer.from('x'),
        qos: 0,
        retain: false,
        dup: false,
      });
      if (raised) {
        const got = await sub.expect('publish', 10_000);
        assert.equal(got.topic, topics[0]);
        sub.send({ type: 'puback', packetId: got.packetId!, reasonCode: 0 });
        await v3.expectSilence();
      } else {
        await v3.closed();
      }
      assert.equal(server.server.defaultBroker.stats.droppedTopicLevels, raised ? 0 : topics.length + 1);
      await assertBrokerHealthy(server.port, others);
      assert.deepEqual(errors, []);
    });
  }
});
