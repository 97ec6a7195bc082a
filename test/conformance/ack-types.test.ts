/**
 * Acknowledgements of the server's PUBLISHes, literal bytes from the subscriber: one of the
 * wrong type for an id in flight is a protocol error (v5 DISCONNECT 0x82 [MQTT-4.13.1-1], v3
 * close [MQTT-4.8.0-1]); one for an unknown id is not (PUBACK/PUBCOMP ignored, PUBREC answered
 * with PUBREL, 0x92 in v5: section 3.6.2.1); a repeated PUBREC gets PUBREL again.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ProtocolVersion, QoS } from '../../src/protocol/index.ts';
import { harness } from '../helpers/v5-harness.ts';
import { connectV4, connectV5, packet, str, Wire } from '../helpers/wire.ts';

const h = harness('acktype');

const PUBACK = 0x40;
const PUBREC = 0x50;
const PUBREL = 0x62;
const PUBCOMP = 0x70;
const ack = (first: number, id: number): number[] => [first, 0x02, id >> 8, id & 0xff];

/** A subscriber (literal bytes) that has just been sent a QoS `qos` PUBLISH; its packet id. */
async function delivered(version: ProtocolVersion, qos: QoS): Promise<{ w: Wire; id: number }> {
  const topic = `acktype/${h.uid()}`;
  const w = new Wire(h.open(version));
  await w.handshake(version === 5 ? connectV5(h.uid()) : connectV4(h.uid()));
  w.send(packet(0x82, [0x00, 0x01, ...(version === 5 ? [0x00] : []), ...str(topic), qos]));
  const suback = await w.frame();
  assert.equal(suback.first, 0x90);
  await h.publish(await h.connected(version), topic, 'm', qos);
  const publish = await w.frame();
  assert.equal(publish.first, 0x30 | (qos << 1), 'PUBLISH');
  const at = 2 + topic.length;
  return { w, id: (publish.body[at]! << 8) | publish.body[at + 1]! };
}

/** The server closes as the protocol error asks: DISCONNECT 0x82 in v5, silently in v3. */
async function expectProtocolError(w: Wire, version: ProtocolVersion): Promise<void> {
  if (version === 5) await w.expectDisconnect(0x82);
  else await w.expectSilentClose();
}

for (const version of [4, 5] as const) {
  describe(`wrong acknowledgement type, MQTT ${version === 5 ? '5' : '3.1.1'}`, () => {
    test('PUBREC for a QoS 1 message closes the connection [MQTT-4.8.0-1] [MQTT-4.13.1-1]', async () => {
      const { w, id } = await delivered(version, 1);
      w.send(ack(PUBREC, id));
      await expectProtocolError(w, version);
    });

    test('PUBCOMP for a QoS 1 message closes the connection [MQTT-4.8.0-1] [MQTT-4.13.1-1]', async () => {
      const { w, id } = await delivered(version, 1);
      w.send(ack(PUBCOMP, id));
      await expectProtocolError(w, version);
    });

    test('PUBACK for a QoS 2 message awaiting PUBREC closes the connection [MQTT-4.8.0-1] [MQTT-4.13.1-1]', async () => {
      const { w, id } = await delivered(version, 2);
      w.send(ack(PUBACK, id));
      await expectProtocolError(w, version);
    });

    test('PUBCOMP for a QoS 2 message before its PUBREC closes the connection [MQTT-4.8.0-1] [MQTT-4.13.1-1]', async () => {
      const { w, id } = await delivered(version, 2);
      w.send(ack(PUBCOMP, id));
      await expectProtocolError(w, version);
    });

    test('PUBACK for a QoS 2 message awaiting PUBCOMP closes the connection; a repeated PUBREC gets PUBREL again', async () => {
      const { w, id } = await delivered(version, 2);
      w.send(ack(PUBREC, id));
      assert.deepEqual([...(await w.frame()).body], [id >> 8, id & 0xff], 'PUBREL');
      w.send(ack(PUBREC, id));
      const again = await w.frame();
      assert.deepEqual([again.first, ...again.body], [PUBREL, id >> 8, id & 0xff], 'PUBREL again');
      w.send(ack(PUBACK, id));
      await expectProtocolError(w, version);
    });

    test('acknowledgements for an unknown packet id are not errors: PUBACK and PUBCOMP ignored, PUBREC answered with PUBREL (v5: 0x92)', async () => {
      const { w, id } = await delivered(version, 1);
      w.send(ack(PUBACK, id)); // the exchange is complete: the id is unknown from here on
      w.send(ack(PUBACK, id));
      w.send(ack(PUBCOMP, id));
      w.send(ack(PUBREC, id));
      const pubrel = await w.frame();
      const notFound = version === 5 ? [0x92] : [];
      assert.deepEqual([pubrel.first, ...pubrel.body], [PUBREL, id >> 8, id & 0xff, ...notFound]);
      await w.expectAlive();
    });
  });
}
