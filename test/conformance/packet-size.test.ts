/**
 * Maximum Packet Size both ways: ours is advertised and enforced before a body is buffered
 * (DISCONNECT 0x95, bad-input.test.ts has the literal-byte case); a client's is never exceeded:
 * a PUBLISH too large for it is dropped for that client alone and counted [MQTT-3.1.2-24],
 * [MQTT-3.1.2-25], live, retained or queued, and MQTT.js announcing a maximum sees only what fits.
 * The CONNACK obeys it too: without its optional properties if need be, else the CONNECT is
 * refused with a CONNACK 0x83 that fits, else closed without a byte.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import mqtt from 'mqtt';
import { harness, text } from '../helpers/v5-harness.ts';
import { connackProperties, connectV5, packet, str, Wire } from '../helpers/wire.ts';

const h = harness('size', { maximumPacketSize: 256 });

/** v5 CONNECT, Clean Start, keep alive 60, with `properties` (raw bytes), client id, and optional will. */
function connectWith(id: string, properties: number[], will?: { topic: string; payload: string }): number[] {
  const flags = will === undefined ? 0x02 : 0x06;
  const willBytes = will === undefined ? [] : [0x00, ...str(will.topic), ...str(will.payload)];
  return packet(0x10, [
    ...str('MQTT'),
    0x05,
    flags,
    0x00,
    0x3c,
    properties.length,
    ...properties,
    ...str(id),
    ...willBytes,
  ]);
}

/** Maximum Packet Size (0x27), a four-byte integer. */
const maximumPacketSize = (n: number): number[] => [
  0x27,
  n >>> 24,
  (n >> 16) & 0xff,
  (n >> 8) & 0xff,
  n & 0xff,
];

describe('Maximum Packet Size', () => {
  test('ours (256) is advertised, and a 257-byte PUBLISH gets DISCONNECT 0x95 (literal bytes) [MQTT-3.2.2-15]', async (t) => {
    const w = await Wire.tcp(h.ts.port, 5);
    t.after(() => w.destroy());
    const ack = await w.handshake(connectV5(h.uid()));
    assert.deepEqual(connackProperties(ack).get(0x27), [0x00, 0x00, 0x01, 0x00]);
    const body = [...str('ps/x'), 0x00];
    const fits = packet(0x30, [...body, ...Buffer.alloc(256 - 3 - body.length, 0x61)]);
    assert.equal(fits.length, 256);
    w.send(fits);
    await w.expectAlive();
    w.send(packet(0x30, [...body, ...Buffer.alloc(257 - 3 - body.length, 0x61)]));
    await w.expectDisconnect(0x95);
  });

  test('a client whose Maximum Packet Size cannot hold the CONNACK gets a CONNACK 0x83 that fits, or a close without a byte when none fits [MQTT-3.1.2-24]', async (t) => {
    // Our CONNACK here: Receive Maximum, Maximum Packet Size, Topic Alias Maximum: 16 bytes.
    const fits = await Wire.tcp(h.ts.port, 5);
    t.after(() => fits.destroy());
    const ack = await fits.handshake(connectWith(h.uid(), maximumPacketSize(16)));
    assert.equal(2 + ack.body.length, 16, 'a limit of exactly its size is enough');
    await fits.expectAlive();
    for (const limit of [2, 3, 4]) {
      const w = await Wire.tcp(h.ts.port, 5);
      t.after(() => w.destroy());
      w.send(connectWith(h.uid(), maximumPacketSize(limit)));
      await w.expectSilentClose().catch((err: Error) => assert.fail(`limit ${limit}: ${err.message}`));
    }
    for (const limit of [5, 15]) {
      const w = await Wire.tcp(h.ts.port, 5);
      t.after(() => w.destroy());
      w.send(connectWith(h.uid(), maximumPacketSize(limit)));
      const refusal = await w.frame();
      // CONNACK 0x83 Implementation specific error, its Reason String dropped to fit [MQTT-3.2.2-19]
      assert.deepEqual([refusal.first, ...refusal.body], [0x20, 0x00, 0x83, 0x00], `limit ${limit}`);
      await w.expectSilentClose();
    }
  });

  test("a CONNACK drops the Response Information it was asked for rather than exceed the client's Maximum Packet Size (section 3.1.2.11.7) [MQTT-3.1.2-24]", async (t) => {
    const asks = [...maximumPacketSize(16), 0x19, 0x01]; // Request Response Information 1
    const roomy = await Wire.tcp(h.ts.port, 5);
    t.after(() => roomy.destroy());
    const full = await roomy.handshake(connectWith(h.uid(), [0x19, 0x01]));
    assert.ok(connackProperties(full).has(0x1a), 'Response Information when the client has room');
    const tight = await Wire.tcp(h.ts.port, 5);
    t.after(() => tight.destroy());
    const ack = await tight.handshake(connectWith(h.uid(), asks));
    assert.equal(2 + ack.body.length, 16);
    assert.ok(!connackProperties(ack).has(0x1a), 'no Response Information');
    await tight.expectAlive();
  });

  test('a CONNECT refused for its CONNACK size takes over nothing and leaves no will: the session holder stays, the will is never published', async (t) => {
    const id = h.uid();
    const holder = await Wire.tcp(h.ts.port, 5);
    t.after(() => holder.destroy());
    await holder.handshake(connectWith(id, []));
    const watcher = await Wire.tcp(h.ts.port, 5);
    t.after(() => watcher.destroy());
    await watcher.handshake(connectWith(h.uid(), []));
    watcher.send(packet(0x82, [0x00, 0x01, 0x00, ...str('ps/will'), 0x00])); // SUBSCRIBE "ps/will" QoS 0
    assert.deepEqual([...(await watcher.frame()).body], [0x00, 0x01, 0x00, 0x00], 'SUBACK');
    const tiny = await Wire.tcp(h.ts.port, 5);
    t.after(() => tiny.destroy());
    tiny.send(connectWith(id, maximumPacketSize(2), { topic: 'ps/will', payload: 'gone' }));
    await tiny.expectSilentClose();
    await holder.expectAlive();
    await watcher.expectAlive(); // PINGRESP is the next packet: no will came before it
  });

  test('a retained message too large for the subscriber is skipped on subscribe and counted; others still arrive', async () => {
    const pub = await h.connected(5);
    await h.publish(pub, 'ps/r/big', 'x'.repeat(100), 1, { retain: true });
    await h.publish(pub, 'ps/r/small', 'ok', 1, { retain: true });
    const before = h.stat('droppedTooLarge');
    const sub = await h.connected(5, { properties: { maximumPacketSize: 64 } });
    await h.subscribe(sub, 'ps/r/#', 1);
    assert.equal(text(await h.receive(sub)), 'ok');
    await sub.expectSilence(300);
    assert.equal(h.stat('droppedTooLarge') - before, 1);
    const roomy = await h.connected(5);
    await h.subscribe(roomy, 'ps/r/big', 1);
    assert.equal(text(await h.receive(roomy)).length, 100, 'only that client misses it');
    await h.publish(pub, 'ps/r/big', '', 0, { retain: true });
    await h.publish(pub, 'ps/r/small', '', 0, { retain: true });
  });

  test('MQTT.js announcing Maximum Packet Size 100 receives the messages that fit and never one larger', async (t) => {
    const sub = await mqtt.connectAsync(h.url(), {
      protocolVersion: 5,
      reconnectPeriod: 0,
      properties: { maximumPacketSize: 100 },
    });
    const pub = await mqtt.connectAsync(h.url(), { protocolVersion: 5, reconnectPeriod: 0 });
    t.after(() => Promise.all([sub.endAsync(true), pub.endAsync(true)]));
    const got: string[] = [];
    sub.on('message', (_t, p) => got.push(p.toString()));
    await sub.subscribeAsync('ps/js', { qos: 1 });
    const before = h.ts.server.defaultBroker.stats.droppedTooLarge;
    await pub.publishAsync('ps/js', 'a'.repeat(150), { qos: 1 });
    await pub.publishAsync('ps/js', 'b'.repeat(50), { qos: 0 });
    await pub.publishAsync('ps/js', 'c'.repeat(120), { qos: 0 });
    await pub.publishAsync('ps/js', 'end', { qos: 1 });
    const deadline = Date.now() + 5000;
    while (!got.includes('end') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(got, ['b'.repeat(50), 'end']);
    assert.equal(h.ts.server.defaultBroker.stats.droppedTooLarge - before, 2);
    assert.equal(sub.connected, true, 'the client was never sent a packet it would reject');
  });
});
