/**
 * Before CONNECT is accepted the client is unauthenticated, so the server holds little for it:
 * packets are limited to maxConnectPacketSize (64 KiB by default) until CONNACK, and a larger
 * CONNECT is refused from its first bytes, not buffered for the connect timeout: a v5 client
 * gets CONNACK 0x95 (section 3.2.2.2), a v3.1.1 client a close [MQTT-3.2.2-6] (3.1.1), each
 * logged once at info. Once admitted, packets up to maximumPacketSize are accepted, even in the
 * same write as the CONNECT. Connections not yet admitted are counted (Server.awaitingConnect).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import mqtt from 'mqtt';
import { ScramSha256, scramCredential } from '../../src/auth/index.ts';
import { captureLog } from '../helpers/log-capture.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { ScramClient } from '../helpers/scram-client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';
import {
  assertBrokerHealthy,
  connackProperties,
  connectBystander,
  type Frame,
  packet,
  str,
  varint,
  Wire,
} from '../helpers/wire.ts';

let ids = 0;
const nextId = (): string => `pre-${process.pid}-${++ids}`;
const u16 = (n: number): number[] => [n >> 8, n & 0xff];

/** A server of the test's own, closed after it. */
async function ownServer(
  t: { after: (fn: () => Promise<void>) => void },
  overrides: Parameters<typeof startServer>[0],
  options: Parameters<typeof startServer>[1] = {},
): Promise<TestServer> {
  const ts = await startServer(overrides, options);
  t.after(() => ts.close());
  return ts;
}

/** Polls `check` until it holds (a count the server updates on socket events). */
async function eventually(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * CONNECT, Clean Start, keep alive 60, client id `id`, with a QoS 0 will of `willBytes` bytes on
 * w/t (v5: empty property lists); the bytes as a client writes them.
 */
function connectWithWill(version: 4 | 5, id: string, willBytes: number): Buffer {
  const v5 = version === 5;
  return Buffer.from(
    packet(0x10, [
      ...str('MQTT'),
      version,
      0x06, // Clean Start, Will Flag, Will QoS 0
      0x00,
      0x3c,
      ...(v5 ? [0x00] : []), // properties
      ...str(id),
      ...(v5 ? [0x00] : []), // will properties
      ...str('w/t'),
      ...u16(willBytes),
      ...Buffer.alloc(willBytes, 0x77),
    ]),
  );
}

/**
 * The first 1,000,000 bytes of a CONNECT of level `version` declaring a 1,040,000-byte body:
 * within the 1 MiB maximum packet size, so only the pre-CONNECT limit refuses it.
 */
function partialMegabyteConnect(version: 4 | 5): Buffer {
  const start = [0x10, ...varint(1_040_000), ...str('MQTT'), version, 0x02, 0x00, 0x3c];
  const bytes = Buffer.alloc(1_000_000, 0x61);
  Buffer.from(start).copy(bytes);
  return bytes;
}

/** A v5 CONNACK refusing with 0x95 and a Reason String, nothing after it. */
function assertPacketTooLarge(ack: Frame, what: string): void {
  assert.equal(ack.first, 0x20, what);
  assert.deepEqual([...ack.body.subarray(0, 2)], [0x00, 0x95], `${what}: CONNACK 0x95 Packet too large`);
  assert.match(Buffer.from(connackProperties(ack).get(0x1f) ?? []).toString(), /CONNECT of \d+ bytes/);
}

describe('before CONNECT', () => {
  test('64 connections each sending 1 MB of a CONNECT are each refused at once: v5 CONNACK 0x95, v3.1.1 close, one info line each', async (t) => {
    const log = captureLog('info');
    // A connect timeout far longer than the test: the closes are the refusals, not the timeout.
    const ts = await ownServer(t, { connectTimeout: 600_000 }, { logger: log.logger });
    const bystander = await connectBystander(ts.port);
    t.after(() => bystander.destroy());
    const v5 = partialMegabyteConnect(5);
    const v4 = partialMegabyteConnect(4);
    const wires = await Promise.all(
      Array.from({ length: 64 }, (_, i) => Wire.tcp(ts.port, i % 2 === 0 ? 5 : 4)),
    );
    t.after(() => {
      for (const w of wires) w.destroy();
    });
    for (const [i, w] of wires.entries()) w.send(i % 2 === 0 ? v5 : v4);
    await Promise.all(
      wires.map(async (w, i) => {
        if (i % 2 === 0) assertPacketTooLarge(await w.frame(10_000), `connection ${i}`);
        await w.expectSilentClose(10_000);
      }),
    );
    const refusals = log.withMessage('CONNECT too large; closing');
    assert.equal(refusals.length, 64, 'one line per connection');
    assert.ok(
      refusals.every((l) => l.level === 30 && l.limit === 65_536),
      'at info, naming the limit',
    );
    assert.deepEqual(
      log.lines.filter((l) => (l.level as number) >= 40),
      [],
      'nothing at warn',
    );
    await eventually('no connection left awaiting CONNECT', () => ts.server.awaitingConnect.size === 0);
    await assertBrokerHealthy(ts.port, bystander);
  });

  test('a CONNECT within the limit (a 60 KB will) is admitted, and a 200 KB PUBLISH in the same write is accepted [MQTT-3.1.4-6]', async (t) => {
    const ts = await ownServer(t, {});
    const w = await Wire.tcp(ts.port, 5);
    t.after(() => w.destroy());
    const payload = Buffer.alloc(200_000, 0x70);
    const publish = Buffer.from(
      packet(0x32, [...str('big/one'), ...u16(7), 0x00, ...payload]), // QoS 1, packet id 7
    );
    w.send(Buffer.concat([connectWithWill(5, nextId(), 60_000), publish]));
    const ack = await w.frame();
    assert.deepEqual([ack.first, ...ack.body.subarray(0, 2)], [0x20, 0x00, 0x00], 'CONNACK success');
    assert.deepEqual(
      connackProperties(ack).get(0x27),
      [0x00, 0x10, 0x00, 0x00],
      'Maximum Packet Size advertised: 1 MiB, not the pre-CONNECT limit',
    );
    const puback = await w.frame();
    assert.deepEqual([puback.first, ...puback.body.subarray(0, 2)], [0x40, 0x00, 0x07], 'PUBACK 7');
    await w.expectAlive();
  });

  test('a CONNECT over the limit (a 70 KB will) gets CONNACK 0x95 (v5) or a close (v3.1.1), with nothing processed after it', async (t) => {
    const ts = await ownServer(t, {});
    const bystander = await connectBystander(ts.port);
    t.after(() => bystander.destroy());
    // A QoS 0 PUBLISH to the bystander's topic in the same write: had it been read, the health
    // check below (which expects its own message first) would fail.
    const canary = Buffer.from(packet(0x30, [...str('health/canary'), ...Buffer.from('canary')]));
    const v5 = await Wire.tcp(ts.port, 5);
    t.after(() => v5.destroy());
    v5.send(Buffer.concat([connectWithWill(5, nextId(), 70_000), canary]));
    assertPacketTooLarge(await v5.frame(), 'v5');
    await v5.expectSilentClose();
    const v4 = await Wire.tcp(ts.port, 4);
    t.after(() => v4.destroy());
    v4.send(Buffer.concat([connectWithWill(4, nextId(), 70_000), canary]));
    await v4.expectSilentClose();
    await assertBrokerHealthy(ts.port, bystander);
  });

  test('MQTT.js v5 with a will larger than --max-connect-packet-size is refused with 0x95', async (t) => {
    const ts = await ownServer(t, { maxConnectPacketSize: 1024 });
    const options = { protocolVersion: 5, reconnectPeriod: 0, clientId: nextId() } as const;
    await assert.rejects(
      mqtt.connectAsync(ts.url, { ...options, will: { topic: 'w/t', payload: Buffer.alloc(2000), qos: 0 } }),
      (err: Error & { code?: number }) => {
        assert.equal(err.code, 0x95, err.message);
        return true;
      },
    );
    const fits = await mqtt.connectAsync(ts.url, {
      ...options,
      will: { topic: 'w/t', payload: Buffer.alloc(500), qos: 0 },
    });
    t.after(() => fits.endAsync(true));
    await fits.publishAsync('big/two', Buffer.alloc(4000), { qos: 1 }); // above 1024, once admitted
  });

  test('during an enhanced authentication the limit still holds: an AUTH over it gets CONNACK 0x95 (section 4.12)', async (t) => {
    const ts = await ownServer(t, { maxConnectPacketSize: 512 });
    const users = new Map([['alice', scramCredential('wonderland', undefined, 1000)]]);
    ts.server.defaultBroker.authenticators.set('SCRAM-SHA-256', new ScramSha256((u) => users.get(u)));
    const c = RawClient.memory(ts.server, 5);
    t.after(() => c.destroy());
    const scram = new ScramClient('alice', 'wonderland');
    c.send({
      type: 'connect',
      protocolName: 'MQTT',
      protocolVersion: 5,
      clean: true,
      keepalive: 60,
      clientId: nextId(),
      properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: scram.first() },
    });
    assert.equal((await c.expect('auth')).reasonCode, 0x18);
    assert.equal(ts.server.awaitingConnect.size, 1, 'authenticating still counts as awaiting CONNECT');
    c.send({
      type: 'auth',
      reasonCode: 0x18,
      properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: Buffer.alloc(600) },
    });
    assert.equal((await c.expect('connack')).reasonCode, 0x95);
    await c.closed();
  });

  test('connections not yet past CONNECT are counted apart, until admitted or closed', async (t) => {
    const ts = await ownServer(t, {});
    const { server } = ts;
    const raw = await Promise.all([1, 2, 3].map(() => RawClient.tcp(ts.port, 5)));
    t.after(() => {
      for (const c of raw) c.destroy();
    });
    await eventually('3 awaiting CONNECT', () => server.awaitingConnect.size === 3);
    assert.equal(server.connections.size, 3);
    assert.equal((await raw[0]!.connect({ clientId: nextId() })).reasonCode, 0);
    assert.equal(server.awaitingConnect.size, 2, 'admitted at CONNACK');
    assert.equal(server.connections.size, 3);
    raw[1]!.destroy();
    raw[2]!.sendRaw([0x10, 0x10, 0x00]); // a partial CONNECT, then gone
    raw[2]!.destroy();
    await eventually('none awaiting CONNECT', () => server.awaitingConnect.size === 0);
    await eventually('one connection', () => server.connections.size === 1);
  });
});
