/**
 * MQTT 3.1 (protocol name "MQIsdp", level 3) where it differs from 3.1.1, as literal bytes:
 * PUBREL, SUBSCRIBE and UNSUBSCRIBE carry a real QoS 1 header whose DUP bit a 3.1 client sets
 * when it re-sends one (3.1 sections 3.6, 3.8, 3.10), which 3.1.1 and 5.0 made reserved
 * ([MQTT-3.6.1-1], [MQTT-3.8.1-1], [MQTT-3.10.1-1]); and the CONNACK's first byte is reserved
 * in 3.1 (no Session Present).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { harness } from '../helpers/v5-harness.ts';
import { connectV4, connectV5, packet, str, Wire } from '../helpers/wire.ts';

const h = harness('v31');

/** CONNECT "MQIsdp" level 3, keep alive 60, client id `id`, Clean Session as given. */
function connectV31(id: string, clean: boolean): number[] {
  return packet(0x10, [...str('MQIsdp'), 0x03, clean ? 0x02 : 0x00, 0x00, 0x3c, ...str(id)]);
}

/** A 3.1 client past its CONNACK; returns the CONNACK's bytes too. */
async function connected31(
  t: { after: (fn: () => void) => void },
  id: string,
  clean: boolean,
): Promise<{ w: Wire; connack: number[] }> {
  const w = await Wire.tcp(h.ts.port, 3);
  t.after(() => w.destroy());
  w.send(connectV31(id, clean));
  const ack = await w.frame();
  return { w, connack: [ack.first, ...ack.body] };
}

/** SUBSCRIBE id `id`, "v31/dup" QoS 0, with the given first byte (v3 layout). */
const subscribeV3 = (first: number, id: number): number[] =>
  packet(first, [0x00, id, ...str('v31/dup'), 0x00]);
/** UNSUBSCRIBE id `id`, "v31/dup", with the given first byte (v3 layout). */
const unsubscribeV3 = (first: number, id: number): number[] => packet(first, [0x00, id, ...str('v31/dup')]);

describe('MQTT 3.1 (level 3)', () => {
  test('a PUBREL re-sent with DUP after a reconnect completes the QoS 2 exchange: PUBCOMP, the message delivered once (3.1 section 3.6)', async (t) => {
    const watcher = await Wire.tcp(h.ts.port, 4);
    t.after(() => watcher.destroy());
    watcher.send(connectV4(h.uid()));
    await watcher.frame(); // CONNACK
    watcher.send(packet(0x82, [0x00, 0x01, ...str('v31/q2'), 0x00])); // SUBSCRIBE id 1, "v31/q2" QoS 0
    assert.deepEqual([...(await watcher.frame()).body], [0x00, 0x01, 0x00], 'SUBACK granted QoS 0');

    const id = h.uid();
    const first = await connected31(t, id, false);
    assert.deepEqual(first.connack, [0x20, 0x00, 0x00], 'CONNACK accepted');
    first.w.send(packet(0x34, [...str('v31/q2'), 0x00, 0x09, ...Buffer.from('once')])); // PUBLISH QoS 2 id 9
    assert.deepEqual([...(await first.w.frame()).body], [0x00, 0x09], 'PUBREC 9');
    first.w.destroy(); // the connection drops before the client's PUBREL

    const again = await connected31(t, id, false);
    assert.equal(again.connack[2], 0x00, 'CONNACK accepted');
    again.w.send([0x6a, 0x02, 0x00, 0x09]); // PUBREL id 9, DUP 1 QoS 1: a 3.1 retransmission
    const pubcomp = await again.w.frame();
    assert.deepEqual([pubcomp.first, ...pubcomp.body], [0x70, 0x00, 0x09], 'PUBCOMP 9');
    await again.w.expectAlive();

    const delivered = await watcher.frame();
    assert.equal(delivered.first, 0x30, 'PUBLISH QoS 0');
    assert.equal(delivered.body.subarray(2 + 'v31/q2'.length).toString(), 'once');
    watcher.send([0xc0, 0x00]);
    assert.deepEqual((await watcher.frame()).first, 0xd0, 'PINGRESP next: the message came once');
  });

  test('SUBSCRIBE and UNSUBSCRIBE re-sent with DUP are answered; the same flags close a v3.1.1 connection and get DISCONNECT 0x81 in v5 [MQTT-3.8.1-1] [MQTT-3.10.1-1] [MQTT-3.6.1-1]', async (t) => {
    const { w } = await connected31(t, h.uid(), true);
    w.send(subscribeV3(0x8a, 3)); // SUBSCRIBE, DUP 1 QoS 1
    const suback = await w.frame();
    assert.deepEqual([suback.first, ...suback.body], [0x90, 0x00, 0x03, 0x00], 'SUBACK 3, granted QoS 0');
    w.send(unsubscribeV3(0xaa, 4)); // UNSUBSCRIBE, DUP 1 QoS 1
    const unsuback = await w.frame();
    assert.deepEqual([unsuback.first, ...unsuback.body], [0xb0, 0x00, 0x04], 'UNSUBACK 4');
    await w.expectAlive();

    const refused: [string, number[], number[]][] = [
      ['PUBREL with DUP', [0x6a, 0x02, 0x00, 0x01], [0x6a, 0x02, 0x00, 0x01]],
      ['SUBSCRIBE with DUP', subscribeV3(0x8a, 1), packet(0x8a, [0x00, 0x01, 0x00, ...str('v31/dup'), 0x00])],
      ['UNSUBSCRIBE with DUP', unsubscribeV3(0xaa, 1), packet(0xaa, [0x00, 0x01, 0x00, ...str('v31/dup')])],
    ];
    for (const [what, v4bytes, v5bytes] of refused) {
      const v4 = await Wire.tcp(h.ts.port, 4);
      t.after(() => v4.destroy());
      v4.send(connectV4(h.uid()));
      await v4.frame(); // CONNACK
      v4.send(v4bytes);
      await v4.expectSilentClose().catch((err: Error) => assert.fail(`v3.1.1 ${what}: ${err.message}`));
      const v5 = await Wire.tcp(h.ts.port, 5);
      t.after(() => v5.destroy());
      await v5.handshake(connectV5(h.uid()));
      v5.send(v5bytes);
      await v5.expectDisconnect(0x81).catch((err: Error) => assert.fail(`v5 ${what}: ${err.message}`));
    }
  });

  test('the CONNACK flags byte is 0 when a session is resumed, as 3.1 has no Session Present; v3.1.1 sets it [MQTT-3.2.2-2]', async (t) => {
    const id31 = h.uid();
    (await connected31(t, id31, false)).w.send([0xe0, 0x00]); // DISCONNECT: the session stays
    const resumed = await connected31(t, id31, false);
    assert.deepEqual(resumed.connack, [0x20, 0x00, 0x00], '3.1 CONNACK: reserved byte 0, accepted');

    const id311 = h.uid();
    const keep = packet(0x10, [...str('MQTT'), 0x04, 0x00, 0x00, 0x3c, ...str(id311)]); // Clean Session 0
    const first = await Wire.tcp(h.ts.port, 4);
    t.after(() => first.destroy());
    first.send(keep);
    await first.frame();
    first.send([0xe0, 0x00]);
    await first.expectSilentClose();
    const second = await Wire.tcp(h.ts.port, 4);
    t.after(() => second.destroy());
    second.send(keep);
    const ack = await second.frame();
    assert.deepEqual([ack.first, ...ack.body], [0x20, 0x01, 0x00], '3.1.1 CONNACK: Session Present 1');
  });
});
