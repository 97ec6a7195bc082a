/**
 * Maximum Packet Size both ways: ours is advertised and enforced before a body is buffered
 * (DISCONNECT 0x95, bad-input.test.ts has the literal-byte case); a client's is never exceeded:
 * a PUBLISH too large for it is dropped for that client alone and counted [MQTT-3.1.2-24],
 * [MQTT-3.1.2-25], live, retained or queued, and MQTT.js announcing a maximum sees only what fits.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import mqtt from 'mqtt';
import { harness, text } from '../helpers/v5-harness.ts';
import { connackProperties, connectV5, packet, str, Wire } from '../helpers/wire.ts';

const h = harness('size', { maximumPacketSize: 256 });

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

  test('a retained message too large for the subscriber is skipped on subscribe and counted; others still arrive', async () => {
    const stats = h.ts.server.defaultBroker.stats;
    const pub = await h.connected(5);
    await h.publish(pub, 'ps/r/big', 'x'.repeat(100), 1, { retain: true });
    await h.publish(pub, 'ps/r/small', 'ok', 1, { retain: true });
    const before = stats.droppedTooLarge;
    const sub = await h.connected(5, { properties: { maximumPacketSize: 64 } });
    await h.subscribe(sub, 'ps/r/#', 1);
    assert.equal(text(await h.receive(sub)), 'ok');
    await sub.expectSilence(300);
    assert.equal(stats.droppedTooLarge - before, 1);
    const roomy = await h.connected(5);
    await h.subscribe(roomy, 'ps/r/big', 1);
    assert.equal(text(await h.receive(roomy)).length, 100, 'only that client misses it');
    await h.publish(pub, 'ps/r/big', '', 0, { retain: true });
    await h.publish(pub, 'ps/r/small', '', 0, { retain: true });
  });

  test('MQTT.js announcing Maximum Packet Size 100 receives the messages that fit and never one larger', async (t) => {
    const sub = await mqtt.connectAsync(h.ts.url, {
      protocolVersion: 5,
      reconnectPeriod: 0,
      properties: { maximumPacketSize: 100 },
    });
    const pub = await mqtt.connectAsync(h.ts.url, { protocolVersion: 5, reconnectPeriod: 0 });
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
