/**
 * Output gathering (src/session/connection-io.ts): packets under 1 KiB written in one
 * event-loop turn are copied into one buffer, larger ones are written as they are, and what a
 * subscriber reads is still every packet in the order the server wrote it [MQTT-4.6.0-5]
 * (Ordered Topic: messages of one publisher on one topic arrive in the order published).
 *
 * The publisher is a raw socket that writes a whole mix of PUBLISH packets in one TCP write,
 * so the server reads them in as few chunks (turns) as the kernel allows: small ones on both
 * sides of large ones (5 KB, past the gathering bound; 70 KB, past the 64 KiB chunk), a run
 * of 900 B ones that crosses the 64 KiB chunk, and sizes either side of the 1 KiB bound. The subscriber is MQTT.js, v3.1.1 and v5.
 */
import assert from 'node:assert/strict';
import { connect as tcpConnect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { until } from '../helpers/child-process.ts';
import { uniqueName } from '../helpers/interop-tools.ts';
import { startServer, type TestServer } from '../helpers/server.ts';
import { connectV4, packet, str } from '../helpers/wire.ts';

/** Payload sizes in publish order: small, large, small, over a chunk, small, a run of 900 B, around 1 KiB. */
const SIZES = [
  10,
  20,
  5_000,
  10,
  70_000,
  12,
  ...Array.from({ length: 80 }, () => 900),
  15,
  990,
  1_000,
  1_010,
  1_030,
  9,
];

/** A QoS 0 PUBLISH (v3.1.1 framing) of `size` bytes numbered `n` in its first 4 bytes. */
function publishBytes(topic: string, n: number, size: number): number[] {
  const payload = Buffer.alloc(size, 0x2e);
  payload.writeUInt32BE(n, 0);
  return packet(0x30, [...str(topic), ...payload]);
}

describe('gathered output keeps packet order', () => {
  let ts: TestServer;
  before(async () => {
    ts = await startServer({ httpPort: 0 });
  });
  after(() => ts.close());

  for (const version of [4, 5] as const) {
    it(`v${version === 5 ? 5 : '3.1.1'}: a large PUBLISH between small ones written in one turn arrives in order, whole [MQTT-4.6.0-5]`, async (t) => {
      const topic = `order/${uniqueName('t')}`;
      const sub = await mqtt.connectAsync(ts.url, {
        protocolVersion: version,
        clientId: uniqueName('sub'),
        reconnectPeriod: 0,
      });
      t.after(() => sub.end(true));
      await sub.subscribeAsync(topic, { qos: 1 });
      const seen: { n: number; size: number }[] = [];
      sub.on('message', (_topic, payload) => seen.push({ n: payload.readUInt32BE(0), size: payload.length }));

      const publisher = tcpConnect(ts.port, '127.0.0.1');
      t.after(() => publisher.destroy());
      await new Promise<void>((resolve, reject) => publisher.once('connect', resolve).once('error', reject));
      const connack = new Promise<void>((resolve) => publisher.once('data', () => resolve()));
      publisher.write(Buffer.from(connectV4(uniqueName('pub'))));
      await connack;
      // Three rounds of the mix in one write: the kernel may split it, never reorder it.
      const rounds = 3;
      const bytes: number[] = [];
      const expected: { n: number; size: number }[] = [];
      for (let r = 0; r < rounds; r++)
        SIZES.forEach((size) => {
          const n = expected.length;
          expected.push({ n, size });
          bytes.push(...publishBytes(topic, n, size));
        });
      publisher.write(Buffer.from(bytes));

      await until(() => seen.length >= expected.length, `${expected.length} messages (has ${seen.length})`);
      assert.deepEqual(seen, expected);
    });
  }
});
