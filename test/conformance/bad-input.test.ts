/**
 * Bad input over TCP, as literal bytes: each test sends hand-written packets that break one
 * rule and checks the literal answer (v5: DISCONNECT or CONNACK with the exact reason code,
 * then close; v3.1.1: close without a byte, or the exact CONNACK return code). Every test ends
 * with a QoS 1 round trip to a bystander that was subscribed throughout, so a bad client is
 * shown to hurt nobody else.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { RawClient } from '../helpers/raw-client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';
import {
  assertBrokerHealthy,
  connackProperties,
  connectBystander,
  connectV4,
  connectV5,
  packet,
  str,
  Wire,
} from '../helpers/wire.ts';

let ts: TestServer;
let bystander: RawClient;
let ids = 0;
const nextId = (): string => `bad-${process.pid}-${++ids}`;

before(async () => {
  ts = await startServer();
  bystander = await connectBystander(ts.port);
});
after(async () => {
  bystander?.destroy();
  await ts?.close();
});

/** A v5 client past its CONNACK on the shared server. */
async function connectedV5(t: { after: (fn: () => void) => void }, port = ts.port): Promise<Wire> {
  const w = await Wire.tcp(port, 5);
  t.after(() => w.destroy());
  await w.handshake(connectV5(nextId()));
  return w;
}

/** A v3.1.1 client past its CONNACK on the shared server. */
async function connectedV4(t: { after: (fn: () => void) => void }, port = ts.port): Promise<Wire> {
  const w = await Wire.tcp(port, 4);
  t.after(() => w.destroy());
  w.send(connectV4(nextId()));
  const ack = await w.frame();
  assert.deepEqual([ack.first, ...ack.body], [0x20, 0x00, 0x00], 'CONNACK accepted');
  return w;
}

/** A broker of its own, with its own bystander, closed after the test. */
async function ownServer(
  t: { after: (fn: () => Promise<void> | void) => void },
  overrides: Parameters<typeof startServer>[0],
): Promise<{ server: TestServer; bystander: RawClient }> {
  const server = await startServer(overrides);
  const own = await connectBystander(server.port);
  t.after(async () => {
    own.destroy();
    await server.close();
  });
  return { server, bystander: own };
}

/**
 * A QoS 0 PUBLISH of "canary" to health/canary, appended in the same write to bytes that must
 * end the connection. Nothing after the offending packet may be processed [MQTT-3.1.4-6]: had
 * the canary been routed, the bystander's next message would be it, and assertBrokerHealthy
 * (which expects its own message next) fails.
 */
const CANARY5 = packet(0x30, [...str('health/canary'), 0x00, ...Buffer.from('canary')]);
const CANARY4 = packet(0x30, [...str('health/canary'), ...Buffer.from('canary')]);

describe('bad input over TCP, literal bytes', () => {
  test('first packet not CONNECT closes the connection without a reply [MQTT-3.1.0-1]', async (t) => {
    for (const first of [
      [0xc0, 0x00], // PINGREQ
      [0x30, 0x05, 0x00, 0x01, 0x61, 0x68, 0x69], // PUBLISH QoS 0, topic "a", payload "hi"
      [0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 0x61, 0x00], // SUBSCRIBE id 1, "a" QoS 0
    ]) {
      const w = await Wire.tcp(ts.port, 4);
      t.after(() => w.destroy());
      w.send(first);
      await w.expectSilentClose();
    }
    await assertBrokerHealthy(ts.port, bystander);
  });

  test('a second CONNECT is a protocol error: v5 DISCONNECT 0x82, v3.1.1 close [MQTT-3.1.0-2]', async (t) => {
    const v5 = await connectedV5(t);
    v5.send([...connectV5(nextId()), ...CANARY5]);
    await v5.expectDisconnect(0x82);
    const v4 = await connectedV4(t);
    v4.send([...connectV4(nextId()), ...CANARY4]);
    await v4.expectSilentClose();
    await assertBrokerHealthy(ts.port, bystander);
  });

  test('a second CONNECT of an unsupported protocol level is still a protocol error: v5 DISCONNECT 0x82, never 0x84 (a CONNACK-only code), v3.1.1 close [MQTT-3.1.0-2]', async (t) => {
    // Found by the fuzz soak (test/fuzz): the codec's CONNACK refusal leaked into DISCONNECT.
    // CONNECT, protocol name "MQTT", level 37, Clean Start, keep alive 60, property length 0.
    const second = packet(0x10, [...str('MQTT'), 0x25, 0x02, 0x00, 0x3c, 0x00, ...str(nextId())]);
    const v5 = await connectedV5(t);
    v5.send([...second, ...CANARY5]);
    await v5.expectDisconnect(0x82);
    const v4 = await connectedV4(t);
    v4.send([...second, ...CANARY4]);
    await v4.expectSilentClose();
    await assertBrokerHealthy(ts.port, bystander);
  });

  test('PUBLISH to a topic name holding a wildcard: v5 DISCONNECT 0x90, v3.1.1 close [MQTT-3.3.2-2]', async (t) => {
    for (const topic of [0x2b, 0x23]) {
      const v5 = await connectedV5(t);
      // PUBLISH QoS 0, topic "a/+" or "a/#", property length 0, no payload
      v5.send([0x30, 0x06, 0x00, 0x03, 0x61, 0x2f, topic, 0x00, ...CANARY5]);
      await v5.expectDisconnect(0x90);
      const v4 = await connectedV4(t);
      v4.send([0x30, 0x05, 0x00, 0x03, 0x61, 0x2f, topic, ...CANARY4]);
      await v4.expectSilentClose();
    }
    await assertBrokerHealthy(ts.port, bystander);
  });

  test('ill-formed UTF-8 or U+0000 in a topic is malformed: v5 DISCONNECT 0x81, v3.1.1 close [MQTT-1.5.4-1] [MQTT-1.5.4-2]', async (t) => {
    for (const topic of [
      [0x61, 0xc3, 0x28], // "a", then 0xC3 without its continuation byte
      [0xed, 0xa0, 0x80], // U+D800, a surrogate, encoded as UTF-8
      [0x61, 0x00, 0x62], // "a", U+0000, "b"
    ]) {
      const v5 = await connectedV5(t);
      v5.send([0x30, 0x06, 0x00, 0x03, ...topic, 0x00, ...CANARY5]); // PUBLISH QoS 0, property length 0
      await v5.expectDisconnect(0x81);
      const v4 = await connectedV4(t);
      v4.send([0x30, 0x05, 0x00, 0x03, ...topic, ...CANARY4]);
      await v4.expectSilentClose();
    }
    await assertBrokerHealthy(ts.port, bystander);
  });

  test('SUBSCRIBE with no topic filter is a protocol error: v5 DISCONNECT 0x82, v3.1.1 close [MQTT-3.8.3-2] [MQTT-3.8.3-3]', async (t) => {
    const v5 = await connectedV5(t);
    v5.send([0x82, 0x03, 0x00, 0x01, 0x00, ...CANARY5]); // SUBSCRIBE id 1, property length 0, no payload
    await v5.expectDisconnect(0x82);
    const v4 = await connectedV4(t);
    v4.send([0x82, 0x02, 0x00, 0x01, ...CANARY4]); // SUBSCRIBE id 1, no payload
    await v4.expectSilentClose();
    await assertBrokerHealthy(ts.port, bystander);
  });

  test('PUBLISH with QoS 3 is malformed: v5 DISCONNECT 0x81, v3.1.1 close [MQTT-3.3.1-4]', async (t) => {
    const v5 = await connectedV5(t);
    // 0x36: PUBLISH, QoS bits 11; topic "a/b", packet id 1, property length 0
    v5.send([0x36, 0x08, 0x00, 0x03, 0x61, 0x2f, 0x62, 0x00, 0x01, 0x00, ...CANARY5]);
    await v5.expectDisconnect(0x81);
    const v4 = await connectedV4(t);
    v4.send([0x36, 0x07, 0x00, 0x03, 0x61, 0x2f, 0x62, 0x00, 0x01, ...CANARY4]);
    await v4.expectSilentClose();
    await assertBrokerHealthy(ts.port, bystander);
  });

  test('wrong reserved fixed-header flags are malformed: v5 DISCONNECT 0x81, v3.1.1 close [MQTT-2.1.3-1] [MQTT-2.2.2-2]', async (t) => {
    const cases: [string, number[], number[]][] = [
      [
        'SUBSCRIBE with flags 0000 [MQTT-3.8.1-1]',
        [0x80, 0x09, 0x00, 0x01, 0x00, 0x00, 0x03, 0x61, 0x2f, 0x62, 0x00], // id 1, props 0, "a/b" QoS 0
        [0x80, 0x08, 0x00, 0x01, 0x00, 0x03, 0x61, 0x2f, 0x62, 0x00],
      ],
      ['PINGREQ with flags 0001', [0xc1, 0x00], [0xc1, 0x00]],
      ['PUBREL with flags 0000 [MQTT-3.6.1-1]', [0x60, 0x02, 0x00, 0x01], [0x60, 0x02, 0x00, 0x01]],
      [
        'UNSUBSCRIBE with flags 0011 [MQTT-3.10.1-1]',
        [0xa3, 0x08, 0x00, 0x01, 0x00, 0x00, 0x03, 0x61, 0x2f, 0x62], // id 1, props 0, "a/b"
        [0xa3, 0x07, 0x00, 0x01, 0x00, 0x03, 0x61, 0x2f, 0x62],
      ],
      ['DISCONNECT with flags 1000 [MQTT-3.14.1-1]', [0xe8, 0x00], [0xe8, 0x00]],
    ];
    for (const [what, v5bytes, v4bytes] of cases) {
      const v5 = await connectedV5(t);
      v5.send([...v5bytes, ...CANARY5]);
      await v5.expectDisconnect(0x81).catch((err: Error) => assert.fail(`${what}: ${err.message}`));
      const v4 = await connectedV4(t);
      v4.send([...v4bytes, ...CANARY4]);
      await v4.expectSilentClose().catch((err: Error) => assert.fail(`${what}: ${err.message}`));
    }
    await assertBrokerHealthy(ts.port, bystander);
  });

  test('a Remaining Length longer than four bytes is malformed: v5 DISCONNECT 0x81, v3.1.1 close [section 2.1.4]', async (t) => {
    // PUBLISH whose Remaining Length has five bytes, the first four with the continuation bit.
    const bytes = [0x30, 0xff, 0xff, 0xff, 0xff, 0x01];
    const v5 = await connectedV5(t);
    v5.send([...bytes, ...CANARY5]);
    await v5.expectDisconnect(0x81);
    const v4 = await connectedV4(t);
    v4.send([...bytes, ...CANARY4]);
    await v4.expectSilentClose();
    await assertBrokerHealthy(ts.port, bystander);
  });

  test('a packet over the Maximum Packet Size is refused from its fixed header alone: v5 DISCONNECT 0x95 [MQTT-3.2.2-15]', async (t) => {
    const own = await ownServer(t, { maximumPacketSize: 1024 });
    const v5 = await Wire.tcp(own.server.port, 5);
    t.after(() => v5.destroy());
    const ack = await v5.handshake(connectV5(nextId()));
    assert.deepEqual(connackProperties(ack).get(0x27), [0x00, 0x00, 0x04, 0x00], 'Maximum Packet Size 1024');
    // Exactly 1024 bytes is allowed: PUBLISH QoS 0, Remaining Length 1021 (0xFD 0x07),
    // topic "a/b", property length 0, 1015 payload bytes.
    v5.send([0x30, 0xfd, 0x07, 0x00, 0x03, 0x61, 0x2f, 0x62, 0x00, ...Buffer.alloc(1015, 0x78)]);
    await v5.expectAlive();
    // Only a fixed header claiming a 1024-byte body (1027 in all); no body is ever sent.
    v5.send([0x30, 0x80, 0x08]);
    await v5.expectDisconnect(0x95);

    const v4 = await Wire.tcp(own.server.port, 4);
    t.after(() => v4.destroy());
    v4.send(connectV4(nextId()));
    const ack4 = await v4.frame();
    assert.deepEqual([ack4.first, ...ack4.body], [0x20, 0x00, 0x00], 'CONNACK accepted');
    v4.send([0x30, 0xff, 0xff, 0x03]); // PUBLISH claiming 65535 bytes
    await v4.expectSilentClose();
    await assertBrokerHealthy(own.server.port, own.bystander);
  });

  test('a connection that sends no CONNECT is closed after the CONNECT timeout [section 3.1.4]', async (t) => {
    const own = await ownServer(t, { connectTimeout: 300 });
    const started = Date.now();
    const silent = await Wire.tcp(own.server.port, 5);
    t.after(() => silent.destroy());
    const partial = await Wire.tcp(own.server.port, 5);
    t.after(() => partial.destroy());
    partial.send([0x10, 0x10, 0x00]); // the first three bytes of a CONNECT, never finished
    await silent.expectSilentClose(10_000);
    await partial.expectSilentClose(10_000);
    assert.ok(Date.now() - started >= 250, 'not closed before the timeout');
    await assertBrokerHealthy(own.server.port, own.bystander);
  });

  test('an unsupported protocol level gets CONNACK 0x84 (v5 form) or 0x01 (v3 form) and a close [MQTT-3.1.2-2]', async (t) => {
    const level6 = await Wire.tcp(ts.port, 5);
    t.after(() => level6.destroy());
    // CONNECT "MQTT" level 6, Clean Start, keep alive 60, property length 0, empty client id
    level6.send([
      0x10,
      0x0d,
      0x00,
      0x04,
      0x4d,
      0x51,
      0x54,
      0x54,
      0x06,
      0x02,
      0x00,
      0x3c,
      0x00,
      0x00,
      0x00,
      ...CANARY4,
    ]);
    const ack6 = await level6.frame();
    assert.equal(ack6.first, 0x20);
    assert.deepEqual([...ack6.body.subarray(0, 2)], [0x00, 0x84], 'v5 CONNACK: Unsupported Protocol Version');
    connackProperties(ack6); // well-formed v5 property block
    await level6.expectSilentClose();

    const level2 = await Wire.tcp(ts.port, 4);
    t.after(() => level2.destroy());
    // CONNECT "MQTT" level 2, Clean Session, keep alive 60, empty client id
    level2.send([
      0x10,
      0x0c,
      0x00,
      0x04,
      0x4d,
      0x51,
      0x54,
      0x54,
      0x02,
      0x02,
      0x00,
      0x3c,
      0x00,
      0x00,
      ...CANARY4,
    ]);
    const ack2 = await level2.frame();
    assert.deepEqual(
      [ack2.first, ...ack2.body],
      [0x20, 0x00, 0x01],
      'CONNACK 0x01 unacceptable protocol level',
    );
    await level2.expectSilentClose();
    await assertBrokerHealthy(ts.port, bystander);
  });

  test('v3.1.1 empty client id with Clean Session 0 gets CONNACK 0x02 and a close [MQTT-3.1.3-8]', async (t) => {
    const w = await Wire.tcp(ts.port, 4);
    t.after(() => w.destroy());
    // CONNECT "MQTT" level 4, flags 0 (Clean Session 0), keep alive 60, empty client id
    w.send([0x10, 0x0c, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x00, 0x00, 0x3c, 0x00, 0x00, ...CANARY4]);
    const ack = await w.frame();
    assert.deepEqual([ack.first, ...ack.body], [0x20, 0x00, 0x02], 'CONNACK 0x02 identifier rejected');
    await w.expectSilentClose();
    await assertBrokerHealthy(ts.port, bystander);
  });

  test('a v3.1.1 or 3.1 CONNECT whose Will Topic is empty or holds a wildcard is closed without a CONNACK, never 0x03 Server unavailable [MQTT-3.1.4-1] [MQTT-3.2.2-6]; v5 gets CONNACK 0x90', async (t) => {
    for (const topic of ['', 'will/+', 'will/#']) {
      for (const [name, level, version] of [
        ['MQTT', 4, '3.1.1'],
        ['MQIsdp', 3, '3.1'],
      ] as const) {
        // CONNECT, Will Flag + Clean Session, keep alive 60, client id, will topic, will payload "x"
        const w = await Wire.tcp(ts.port, level);
        t.after(() => w.destroy());
        w.send([
          ...packet(0x10, [
            ...str(name),
            level,
            0x06,
            0x00,
            0x3c,
            ...str(nextId()),
            ...str(topic),
            ...str('x'),
          ]),
          ...CANARY4,
        ]);
        await w
          .expectSilentClose()
          .catch((err: Error) => assert.fail(`v${version} "${topic}": ${err.message}`));
      }
      // The same in v5: property length 0, then the will's property length 0 before its topic
      const v5 = await Wire.tcp(ts.port, 5);
      t.after(() => v5.destroy());
      v5.send([
        ...packet(0x10, [
          ...[...str('MQTT'), 0x05, 0x06, 0x00, 0x3c, 0x00],
          ...[...str(nextId()), 0x00, ...str(topic), ...str('x')],
        ]),
        ...CANARY5,
      ]);
      const ack = await v5.frame();
      assert.deepEqual([ack.first, ...ack.body.subarray(0, 2)], [0x20, 0x00, 0x90], `v5 "${topic}": 0x90`);
      await v5.expectSilentClose();
    }
    await assertBrokerHealthy(ts.port, bystander);
  });

  test('a v3.1.1 will the server does not offer (QoS 2 above Maximum QoS 1, retain when unavailable) is refused by a close without CONNACK [MQTT-3.2.2-6]; v5 gets CONNACK 0x9B or 0x9A', async (t) => {
    const own = await ownServer(t, { maximumQoS: 1, retainAvailable: false });
    const cases: [string, number, number][] = [
      ['will QoS 2', 0x16, 0x9b], // Will Flag, Will QoS 2, Clean Session
      ['will retain', 0x26, 0x9a], // Will Flag, Will Retain, Clean Session
    ];
    for (const [what, flags, v5reason] of cases) {
      const v4 = await Wire.tcp(own.server.port, 4);
      t.after(() => v4.destroy());
      v4.send(
        packet(0x10, [...str('MQTT'), 0x04, flags, 0x00, 0x3c, ...str(nextId()), ...str('w'), ...str('x')]),
      );
      await v4.expectSilentClose().catch((err: Error) => assert.fail(`v3.1.1 ${what}: ${err.message}`));
      const v5 = await Wire.tcp(own.server.port, 5);
      t.after(() => v5.destroy());
      v5.send(
        packet(0x10, [
          ...str('MQTT'),
          0x05,
          flags,
          0x00,
          0x3c,
          0x00,
          ...str(nextId()),
          0x00,
          ...str('w'),
          ...str('x'),
        ]),
      );
      const ack = await v5.frame();
      assert.deepEqual([ack.first, ...ack.body.subarray(0, 2)], [0x20, 0x00, v5reason], `v5 ${what}`);
      await v5.expectSilentClose();
    }
    await assertBrokerHealthy(own.server.port, own.bystander);
  });

  test('MQTT 3.1 (MQIsdp, level 3) connects, subscribes and publishes', async (t) => {
    const w = await Wire.tcp(ts.port, 3);
    t.after(() => w.destroy());
    // CONNECT "MQIsdp" level 3, Clean Session, keep alive 60, client id "v31a"
    w.send([
      0x10, 0x12, 0x00, 0x06, 0x4d, 0x51, 0x49, 0x73, 0x64, 0x70, 0x03, 0x02, 0x00, 0x3c, 0x00, 0x04, 0x76,
      0x33, 0x31, 0x61,
    ]);
    const ack = await w.frame();
    assert.deepEqual([ack.first, ...ack.body], [0x20, 0x00, 0x00], 'CONNACK accepted');
    w.send([0x82, 0x08, 0x00, 0x01, 0x00, 0x03, 0x76, 0x2f, 0x33, 0x01]); // SUBSCRIBE id 1, "v/3" QoS 1
    const suback = await w.frame();
    assert.deepEqual([suback.first, ...suback.body], [0x90, 0x00, 0x01, 0x01], 'SUBACK id 1, granted QoS 1');
    w.send([0x32, 0x0a, 0x00, 0x03, 0x76, 0x2f, 0x33, 0x00, 0x07, 0x68, 0x69, 0x21]); // PUBLISH QoS 1 id 7 "hi!"
    const frames = [await w.frame(), await w.frame()].sort((a, b) => a.first - b.first);
    const [pub, puback] = frames as [(typeof frames)[0], (typeof frames)[0]];
    assert.deepEqual([puback.first, ...puback.body], [0x40, 0x00, 0x07], 'PUBACK id 7');
    assert.equal(pub.first, 0x32, 'PUBLISH QoS 1, DUP 0, RETAIN 0');
    assert.deepEqual([...pub.body.subarray(0, 5)], [0x00, 0x03, 0x76, 0x2f, 0x33], 'topic "v/3"');
    assert.deepEqual([...pub.body.subarray(7)], [0x68, 0x69, 0x21], 'payload "hi!"');
    w.send([0x40, 0x02, pub.body[5]!, pub.body[6]!]); // PUBACK the delivery
    w.send([0xe0, 0x00]); // DISCONNECT
    await w.expectSilentClose();
    await assertBrokerHealthy(ts.port, bystander);
  });

  test('a silent client is disconnected after 1.5 × keep alive (v5 DISCONNECT 0x8D) and its will is published [MQTT-3.1.2-22] [MQTT-3.1.2-8]', async (t) => {
    const watcher = await Wire.tcp(ts.port, 4);
    t.after(() => watcher.destroy());
    watcher.send(connectV4(nextId()));
    await watcher.frame(); // CONNACK
    watcher.send([0x82, 0x0c, 0x00, 0x01, ...str('ka/will'), 0x00]); // SUBSCRIBE id 1, "ka/will" QoS 0
    assert.deepEqual([...(await watcher.frame()).body], [0x00, 0x01, 0x00], 'SUBACK');

    const silent = await Wire.tcp(ts.port, 5);
    t.after(() => silent.destroy());
    const started = Date.now();
    silent.send(
      packet(0x10, [
        ...str('MQTT'),
        0x05,
        0x06, // connect flags: Clean Start, Will Flag, Will QoS 0
        0x00,
        0x01, // keep alive 1 s
        0x00, // property length 0
        ...str(nextId()),
        0x00, // will property length 0
        ...str('ka/will'), // will topic
        ...str('gone'), // will payload
      ]),
    );
    assert.deepEqual([...(await silent.frame()).body.subarray(0, 2)], [0x00, 0x00], 'CONNACK success');
    await silent.expectDisconnect(0x8d, 6000);
    assert.ok(Date.now() - started >= 1400, `disconnected after ${Date.now() - started} ms, before 1.5 s`);
    const will = await watcher.frame(5000);
    assert.deepEqual([will.first, ...will.body], [0x30, ...str('ka/will'), ...Buffer.from('gone')]);
    await assertBrokerHealthy(ts.port, bystander);
  });

  test('a v5 keep alive above the server maximum is answered with Server Keep Alive in CONNACK [MQTT-3.2.2-21] [MQTT-3.2.2-22]', async (t) => {
    const own = await ownServer(t, { maxKeepalive: 10 });
    const high = await Wire.tcp(own.server.port, 5);
    t.after(() => high.destroy());
    const ack = await high.handshake(connectV5(nextId(), 60));
    assert.deepEqual(connackProperties(ack).get(0x13), [0x00, 0x0a], 'Server Keep Alive 10');
    const low = await Wire.tcp(own.server.port, 5);
    t.after(() => low.destroy());
    const lowAck = await low.handshake(connectV5(nextId(), 5));
    assert.equal(connackProperties(lowAck).has(0x13), false, 'no Server Keep Alive when within the maximum');
    await high.expectAlive();
    await assertBrokerHealthy(own.server.port, own.bystander);
  });

  test('Topic Alias 0 or above the Topic Alias Maximum: v5 DISCONNECT 0x94 [MQTT-3.3.2-8] [MQTT-3.3.2-9]', async (t) => {
    const ok = await connectedV5(t);
    // PUBLISH QoS 0, "a/b", properties: Topic Alias 64 (the advertised maximum), payload "x"
    ok.send([0x30, 0x0a, 0x00, 0x03, 0x61, 0x2f, 0x62, 0x03, 0x23, 0x00, 0x40, 0x78]);
    await ok.expectAlive();
    for (const alias of [0x00, 0x41]) {
      const v5 = await connectedV5(t);
      v5.send([0x30, 0x0a, 0x00, 0x03, 0x61, 0x2f, 0x62, 0x03, 0x23, 0x00, alias, 0x78, ...CANARY5]);
      await v5.expectDisconnect(0x94);
    }
    await assertBrokerHealthy(ts.port, bystander);
  });

  test('a PUBLISH from a client carrying a Subscription Identifier: v5 DISCONNECT 0x82 [MQTT-3.3.4-6]', async (t) => {
    const v5 = await connectedV5(t);
    // PUBLISH QoS 0, "a/b", properties: Subscription Identifier 1, payload "x"
    v5.send([0x30, 0x09, 0x00, 0x03, 0x61, 0x2f, 0x62, 0x02, 0x0b, 0x01, 0x78, ...CANARY5]);
    await v5.expectDisconnect(0x82);
    await assertBrokerHealthy(ts.port, bystander);
  });

  test('DISCONNECT setting a Session Expiry Interval when CONNECT had 0: v5 DISCONNECT 0x82 [section 3.14.2.2.2]', async (t) => {
    const v5 = await connectedV5(t);
    // DISCONNECT reason 0x00, properties: Session Expiry Interval 10
    v5.send([0xe0, 0x07, 0x00, 0x05, 0x11, 0x00, 0x00, 0x00, 0x0a, ...CANARY5]);
    await v5.expectDisconnect(0x82);
    await assertBrokerHealthy(ts.port, bystander);
  });

  test('AUTH without an Authentication Method in CONNECT: v5 DISCONNECT 0x82, v3.1.1 close [MQTT-4.12.0-7]', async (t) => {
    const short = await connectedV5(t);
    short.send([0xf0, 0x00, ...CANARY5]); // AUTH, Remaining Length 0 (reason 0x00, no properties)
    await short.expectDisconnect(0x82);
    const reauth = await connectedV5(t);
    // AUTH reason 0x19 (re-authenticate), properties: Authentication Method "SCRAM"
    reauth.send([0xf0, 0x0a, 0x19, 0x08, 0x15, 0x00, 0x05, 0x53, 0x43, 0x52, 0x41, 0x4d, ...CANARY5]);
    await reauth.expectDisconnect(0x82);
    const v4 = await connectedV4(t);
    v4.send([0xf0, 0x00, ...CANARY4]); // packet type 15 is reserved in 3.1.1
    await v4.expectSilentClose();
    await assertBrokerHealthy(ts.port, bystander);
  });
});
