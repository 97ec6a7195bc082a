/**
 * Flow control (section 4.9): our Receive Maximum is advertised and enforced inbound (0x93 when
 * a client has more unreleased QoS 2 messages than it allows); the client's Receive Maximum
 * bounds our outbound in-flight window, seen here through MQTT.js, which enforces it on its side.
 * (Outbound window and resume behaviour at packet level: features.test.ts.)
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import mqtt from 'mqtt';
import { harness } from '../helpers/v5-harness.ts';
import { connackProperties, connectV5, packet, str, Wire } from '../helpers/wire.ts';

const h = harness('flow');

describe('inbound Receive Maximum', () => {
  // No one subscribes to fc/x: a first PUBREC says 0x10 No matching subscribers, a repeated one 0x00.
  test('Receive Maximum 2 is advertised, and a third unreleased QoS 2 PUBLISH gets DISCONNECT 0x93 (literal bytes)', async (t) => {
    const s = await h.serverWith({ receiveMaximum: 2 });
    const w = await Wire.tcp(s.port, 5);
    t.after(() => w.destroy());
    const ack = await w.handshake(connectV5(h.uid()));
    assert.deepEqual(connackProperties(ack).get(0x21), [0x00, 0x02]);
    const qos2 = (id: number): number[] => packet(0x34, [...str('fc/x'), 0x00, id, 0x00, 0x78]);
    w.send(qos2(1));
    assert.deepEqual([...(await w.frame()).body], [0x00, 0x01, 0x10], 'PUBREC 1');
    w.send(qos2(2));
    assert.deepEqual([...(await w.frame()).body], [0x00, 0x02, 0x10], 'PUBREC 2');
    w.send(qos2(2)); // a re-send of an unreleased id does not count again [MQTT-4.3.3-10]
    assert.deepEqual([...(await w.frame()).body], [0x00, 0x02]);
    w.send(packet(0x62, [0x00, 0x01])); // PUBREL 1 frees a slot
    assert.deepEqual([...(await w.frame()).body], [0x00, 0x01], 'PUBCOMP 1');
    w.send(qos2(3));
    assert.deepEqual([...(await w.frame()).body], [0x00, 0x03, 0x10], 'PUBREC 3');
    w.send(qos2(4));
    await w.expectDisconnect(0x93);
  });

  test('QoS 1 PUBLISHes are acknowledged at once and never count against it', async (t) => {
    const s = await h.serverWith({ receiveMaximum: 1 });
    const w = await Wire.tcp(s.port, 5);
    t.after(() => w.destroy());
    await w.handshake(connectV5(h.uid()));
    for (let id = 1; id <= 5; id++) w.send(packet(0x32, [...str('fc/q1'), 0x00, id, 0x00, 0x78]));
    // 0x10: no one subscribes to fc/q1.
    for (let id = 1; id <= 5; id++) assert.deepEqual([...(await w.frame()).body], [0x00, id, 0x10]);
  });
});

describe('outbound: the client’s Receive Maximum with MQTT.js', () => {
  test('an MQTT.js client with Receive Maximum 3 gets 50 QoS 1 and 50 QoS 2 messages, each QoS in order [MQTT-3.3.4-9]', async (t) => {
    const sub = await mqtt.connectAsync(h.url(), {
      protocolVersion: 5,
      reconnectPeriod: 0,
      properties: { receiveMaximum: 3 },
    });
    const pub = await mqtt.connectAsync(h.url(), { protocolVersion: 5, reconnectPeriod: 0 });
    t.after(() => Promise.all([sub.endAsync(true), pub.endAsync(true)]));
    const got: string[] = [];
    sub.on('message', (_topic, payload) => got.push(payload.toString()));
    await sub.subscribeAsync('fc/js', { qos: 2 });
    const sent: string[] = [];
    for (let i = 0; i < 100; i++) {
      sent.push(String(i));
      pub.publish('fc/js', String(i), { qos: i % 2 === 0 ? 1 : 2 });
    }
    const deadline = Date.now() + 10_000;
    while (got.length < 100 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    // MQTT.js hands a QoS 2 message to the application at PUBREL, so compare each QoS's own order.
    const ofQoS = (list: string[], odd: number): string[] => list.filter((m) => Number(m) % 2 === odd);
    assert.deepEqual(ofQoS(got, 0), ofQoS(sent, 0), 'QoS 1 messages, in order');
    assert.deepEqual(ofQoS(got, 1), ofQoS(sent, 1), 'QoS 2 messages, in order');
  });
});
