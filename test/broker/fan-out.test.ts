/**
 * Large fan-outs split across event-loop turns (src/broker/fan-out.ts, issue 20): one PUBLISH
 * to more subscribers than a slice reaches every one, in order with what follows it; other
 * clients are answered between slices; acknowledgements wait for the commit of every slice;
 * subscribers that leave and a broker deleted meanwhile are handled; the publisher is not read
 * until its broker's fan-out is done. The mass of subscribers are raw clients over in-memory
 * duplexes (the same Connection as a socket, no port each); publishers and the checked
 * subscribers are MQTT.js or raw clients over TCP, except where a test times what is read in
 * which turn: a loopback socket's bytes can wait for the kernel on a loaded machine, so those
 * clients are in memory too.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, it, type TestContext } from 'node:test';
import mqtt from 'mqtt';
import { FAN_OUT_SLICE, FanOut } from '../../src/broker/fan-out.ts';
import { encode, type ProtocolVersion, type PubackPacket } from '../../src/protocol/index.ts';
import { Message } from '../../src/router/index.ts';
import {
  ROUTED_MATCHED,
  ROUTED_PENDING,
  type RoutedSession,
  type Subscription,
} from '../../src/session/index.ts';
import { until } from '../helpers/child-process.ts';
import { tempDir } from '../helpers/pubsub-process.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { pubsubApi, startServer, type TestServer } from '../helpers/server.ts';

/** More subscribers than three slices: the fan-out takes at least four turns. */
const N = 3 * FAN_OUT_SLICE + 1;

/** `n` raw in-memory clients subscribed to `filter`, in subscription order (the fan-out's order). */
async function subscribers(
  ts: TestServer,
  n: number,
  version: ProtocolVersion,
  options: { prefix: string; filter: string; qos: 0 | 1 | 2; username?: string; persistent?: boolean },
): Promise<RawClient[]> {
  const clients: RawClient[] = [];
  for (let i = 0; i < n; i += 250) {
    const batch = Array.from({ length: Math.min(250, n - i) }, async (_, j) => {
      const c = RawClient.memory(ts.server, version);
      await c.connect({
        clientId: `${options.prefix}-${i + j}`,
        clean: options.persistent !== true,
        ...(options.username === undefined ? {} : { username: options.username }),
        ...(version === 5 && options.persistent === true
          ? { properties: { sessionExpiryInterval: 3600 } }
          : {}),
      });
      c.send({
        type: 'subscribe',
        packetId: 1,
        subscriptions: [
          {
            topicFilter: options.filter,
            qos: options.qos,
            noLocal: false,
            retainAsPublished: false,
            retainHandling: 0,
          },
        ],
      });
      await c.expect('suback');
      return c;
    });
    clients.push(...(await Promise.all(batch)));
  }
  return clients;
}

const PUBLISH = { type: 'publish', retain: false, dup: false } as const;

/** The payloads of the PUBLISH packets a raw client has received so far. */
const payloads = (c: RawClient): string[] =>
  c.received.flatMap((p) => (p.type === 'publish' ? [p.payload.toString()] : []));

const hasPublish = (c: RawClient): boolean => c.received.some((p) => p.type === 'publish');

/** An MQTT.js client connected over TCP. */
async function mqttClient(
  t: TestContext,
  ts: TestServer,
  version: 4 | 5,
  clientId: string,
): Promise<mqtt.MqttClient> {
  const client = await mqtt.connectAsync(ts.url, { protocolVersion: version, clientId, reconnectPeriod: 0 });
  t.after(() => client.end(true));
  return client;
}

function endAll(clients: RawClient[]): void {
  for (const c of clients) c.destroy();
}

describe('a fan-out larger than a slice', () => {
  let ts: TestServer;
  before(async () => {
    ts = await startServer();
  });
  after(() => ts.close());

  for (const version of [4, 5] as const) {
    it(`v${version}: reaches every subscriber; later messages of the same and other publishers, even to one subscriber, queue behind it [MQTT-4.6.0-6]`, async (t) => {
      const raw = await subscribers(ts, N, version, {
        prefix: `o${version}`,
        filter: `order${version}/x`,
        qos: 0,
      });
      t.after(() => endAll(raw));
      // A real client subscribed last to both topics: its delivery of the fan-out is in the last
      // slice, and it is the only subscriber of order/y, a fan-out of one.
      const last = await mqttClient(t, ts, version, `o${version}-mqttjs`);
      // (Exact filters: a `#` filter would be matched first, in the first slice.)
      await last.subscribeAsync([`order${version}/x`, `order${version}/y`], { qos: 0 });
      const lastGot: string[] = [];
      last.on('message', (_topic, payload) => lastGot.push(payload.toString()));
      const a = await mqttClient(t, ts, version, `o${version}-a`);
      const b = await mqttClient(t, ts, version, `o${version}-b`);
      // B publishes once A's first message has reached the first subscriber: mid-fan-out.
      raw[0]!.socket.once('data', () => b.publish(`order${version}/y`, 'b1'));
      a.publish(`order${version}/x`, 'a1');
      a.publish(`order${version}/y`, 'a2');
      await until(
        () => raw.every((c) => payloads(c).length === 1) && lastGot.length === 3,
        'every subscriber has its messages',
      );
      for (const c of raw) assert.deepEqual(payloads(c), ['a1']);
      assert.equal(lastGot[0], 'a1', `a1 before the messages routed after it: ${lastGot}`);
      assert.deepEqual([...lastGot].sort(), ['a1', 'a2', 'b1']);
    });
  }

  for (const version of [4, 5] as const) {
    it(`v${version}: a publisher's batch to one topic, read in one turn, reaches each subscriber in one write, in order [MQTT-4.6.0-6]`, async (t) => {
      const raw = await subscribers(ts, N, version, {
        prefix: `batch${version}`,
        filter: `batch${version}/x`,
        qos: 0,
      });
      t.after(() => endAll(raw));
      /** Per subscriber: the chunks it received that carried PUBLISH packets (0x30). */
      const chunks = raw.map(() => 0);
      for (const [i, c] of raw.entries())
        c.socket.on('data', (chunk: Buffer) => {
          if ((chunk[0]! & 0xf0) === 0x30) chunks[i]!++;
        });
      // In memory, so the five PUBLISH packets are one read of the broker's.
      const publisher = RawClient.memory(ts.server, version);
      t.after(() => publisher.destroy());
      await publisher.connect({ clientId: `batch${version}-publisher` });
      const batch = ['m1', 'm2', 'm3', 'm4', 'm5'];
      publisher.socket.write(
        Buffer.concat(
          batch.map((m) =>
            encode({ ...PUBLISH, qos: 0, topic: `batch${version}/x`, payload: Buffer.from(m) }, version),
          ),
        ),
      );
      await until(
        () => raw.every((c) => payloads(c).length === batch.length),
        'every subscriber has the batch',
      );
      for (const c of raw) assert.deepEqual(payloads(c), batch);
      assert.deepEqual(
        [...new Set(chunks)],
        [1],
        'each subscriber got the batch in one write, not one write per message',
      );
    });
  }

  it("a victim's PINGREQ is answered between slices, before the last subscriber's delivery", async (t) => {
    const raw = await subscribers(ts, N, 4, { prefix: 'ping', filter: 'ping/#', qos: 0 });
    t.after(() => endAll(raw));
    // Both in memory, so both packets are there to read in the same turn (a loopback socket's
    // bytes can wait for the kernel on a loaded machine, which would time the kernel, not us).
    const victim = RawClient.memory(ts.server, 4);
    t.after(() => victim.destroy());
    await victim.connect({ clientId: 'ping-victim' });
    const publisher = RawClient.memory(ts.server, 4);
    t.after(() => publisher.destroy());
    await publisher.connect({ clientId: 'ping-publisher' });
    publisher.send({ ...PUBLISH, qos: 0, topic: 'ping/x', payload: Buffer.from('hello') });
    victim.send({ type: 'pingreq' });
    await victim.expect('pingresp');
    const reached = raw.filter(hasPublish).length;
    assert.ok(reached < N, `PINGRESP after ${reached} of ${N} deliveries`);
    await until(() => raw.every(hasPublish), 'every subscriber has the message');
  });

  it("the publisher's input is not read until its broker's fan-out queue is empty (backpressure)", async (t) => {
    const raw = await subscribers(ts, N, 4, { prefix: 'held', filter: 'held/#', qos: 0 });
    t.after(() => endAll(raw));
    // In memory, so that what it writes mid-fan-out is there to read at once (a loopback socket's
    // bytes can wait for the kernel on a loaded machine).
    const publisher = RawClient.memory(ts.server, 4);
    t.after(() => publisher.destroy());
    await publisher.connect({ clientId: 'held-publisher' });
    // Its PINGREQ, written once the fan-out has begun, is read only after the last slice.
    raw[0]!.socket.once('data', () => publisher.send({ type: 'pingreq' }));
    publisher.send({ ...PUBLISH, qos: 0, topic: 'held/x', payload: Buffer.from('x') });
    await publisher.expect('pingresp');
    assert.equal(raw.filter(hasPublish).length, raw.length);
  });

  it('a subscriber that unsubscribes mid-fan-out gets nothing more; one that disconnects persistent gets it on return [MQTT-3.10.4-2]', async (t) => {
    const raw = await subscribers(ts, N, 5, { prefix: 'leave', filter: 'leave/#', qos: 1 });
    t.after(() => endAll(raw));
    // Subscribed last, so their deliveries fall in the last slice.
    const [unsubscriber, leaver, ender] = await subscribers(ts, 3, 5, {
      prefix: 'leave-late',
      filter: 'leave/#',
      qos: 1,
      persistent: true,
    });
    t.after(() => endAll([unsubscriber!, leaver!, ender!]));
    const publisher = await mqttClient(t, ts, 5, 'leave-publisher');
    raw[0]!.socket.once('data', () => {
      unsubscriber!.send({ type: 'unsubscribe', packetId: 2, topicFilters: ['leave/#'] });
      leaver!.send({ type: 'disconnect', reasonCode: 0 });
      // Session Expiry Interval 0 on DISCONNECT: the session ends [MQTT-3.1.2-23].
      ender!.send({ type: 'disconnect', reasonCode: 0, properties: { sessionExpiryInterval: 0 } });
    });
    await publisher.publishAsync('leave/x', 'bye', { qos: 1 });
    await until(() => raw.every(hasPublish), 'every other subscriber has the message');
    await unsubscriber!.expect('unsuback');
    await unsubscriber!.expectSilence(300);
    // The persistent session that went offline still held the subscription: its message waits.
    const back = RawClient.memory(ts.server, 5);
    t.after(() => back.destroy());
    const ack = await back.connect({
      clientId: 'leave-late-1',
      clean: false,
      properties: { sessionExpiryInterval: 3600 },
    });
    assert.equal(ack.sessionPresent, true);
    const got = await back.expect('publish');
    assert.equal(got.payload.toString(), 'bye');
    // The ended session is gone: a new one under its id has nothing queued.
    const fresh = RawClient.memory(ts.server, 5);
    t.after(() => fresh.destroy());
    assert.equal((await fresh.connect({ clientId: 'leave-late-2', clean: false })).sessionPresent, false);
    await fresh.expectSilence(200);
  });
});

/**
 * A server on a data directory whose batches commit every turn (an acknowledgement sent after
 * the first slice's commit would be early), `N` persistent sessions subscribed to `durable/#`
 * and gone offline, and a read-only view of the store: how many copies of a topic are committed.
 */
async function durableFanOut(
  t: TestContext,
  version: 4 | 5,
  qos: 1 | 2,
  extra: Record<string, unknown> = {},
): Promise<{ ts: TestServer; committed: (topic: string) => number }> {
  const dir = tempDir(t, 'pubsub-fan-out-');
  const ts = await startServer({ dataDir: dir, storeBatchMs: 0, ...extra });
  t.after(() => ts.close());
  const raw = await subscribers(ts, N, version, {
    prefix: 'durable',
    filter: 'durable/#',
    qos,
    persistent: true,
  });
  for (const c of raw) c.send({ type: 'disconnect', reasonCode: 0 });
  endAll(raw);
  const db = new DatabaseSync(join(dir, 'pubsub.db'), { readOnly: true });
  t.after(() => db.close());
  const stored = db.prepare('SELECT count(*) AS n FROM outbound WHERE topic = ?');
  return { ts, committed: (topic) => (stored.get(topic) as { n: number }).n };
}

describe('a split fan-out to persistent offline sessions is acknowledged after its commit', () => {
  it('v5 QoS 1: PUBACK only after every slice is committed; 0x10 for a later message that matched nothing, in order', async (t) => {
    const { ts, committed } = await durableFanOut(t, 5, 1);
    const publisher = await RawClient.tcp(ts.port, 5);
    t.after(() => publisher.destroy());
    await publisher.connect({ clientId: 'durable-publisher' });
    publisher.send({ ...PUBLISH, qos: 1, topic: 'durable/x', payload: Buffer.from('kept'), packetId: 1 });
    publisher.send({ ...PUBLISH, qos: 1, topic: 'nobody/here', payload: Buffer.from('lost'), packetId: 2 });
    const first = (await publisher.expect('puback', 10_000)) as PubackPacket;
    // Read at the moment the PUBACK arrives: every offline session's copy is committed.
    assert.equal(committed('durable/x'), N);
    assert.equal(first.packetId, 1);
    assert.equal(first.reasonCode, 0);
    const second = (await publisher.expect('puback')) as PubackPacket;
    assert.equal(second.packetId, 2);
    assert.equal(second.reasonCode, 0x10); // No matching subscribers (section 3.4.2.1)
  });

  it('v3.1.1 QoS 2: PUBREC after the commit; the PUBLISH re-sent meanwhile is not routed again [MQTT-4.3.3-10]', async (t) => {
    const { ts, committed } = await durableFanOut(t, 4, 2);
    const publisher = await RawClient.tcp(ts.port, 4);
    t.after(() => publisher.destroy());
    await publisher.connect({ clientId: 'durable-publisher' });
    const message = {
      ...PUBLISH,
      qos: 2,
      topic: 'durable/q2',
      payload: Buffer.from('once'),
      packetId: 7,
    } as const;
    publisher.send(message);
    publisher.send({ ...message, dup: true });
    const first = (await publisher.expect('pubrec', 10_000)) as PubackPacket;
    assert.equal(committed('durable/q2'), N);
    assert.equal(first.packetId, 7);
    assert.equal(((await publisher.expect('pubrec')) as PubackPacket).packetId, 7);
    publisher.send({ type: 'pubrel', packetId: 7, reasonCode: 0 });
    assert.equal(((await publisher.expect('pubcomp')) as PubackPacket).packetId, 7);
    assert.equal(committed('durable/q2'), N, 'one copy per session');
  });

  it('v5 QoS 1 through an on-publish hook (--hook-ack after): PUBACK after the last slice is committed', async (t) => {
    const hook = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => res.end(Buffer.concat(chunks))); // every message passes unchanged
    });
    await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise((resolve) => hook.close(resolve)));
    const { ts, committed } = await durableFanOut(t, 5, 1, { httpPort: 0 });
    const url = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`;
    const env = await pubsubApi(ts, 'PATCH', '/namespaces/local/brokers/default', {
      on_publish: { url, policy: 'fail-closed', timeout_ms: null },
    });
    assert.equal(env.success, true, JSON.stringify(env.errors));
    const publisher = await RawClient.tcp(ts.port, 5);
    t.after(() => publisher.destroy());
    await publisher.connect({ clientId: 'durable-publisher' });
    publisher.send({
      ...PUBLISH,
      qos: 1,
      topic: 'durable/hooked',
      payload: Buffer.from('kept'),
      packetId: 3,
    });
    const ack = (await publisher.expect('puback', 10_000)) as PubackPacket;
    assert.equal(committed('durable/hooked'), N);
    assert.equal(ack.packetId, 3);
    assert.equal(ack.reasonCode, 0);
  });
});

describe('a broker deleted mid-fan-out', () => {
  it('drops its pending fan-out: its clients get DISCONNECT 0x98, other brokers go on', async (t) => {
    const ts = await startServer({ httpPort: 0 });
    t.after(() => ts.close());
    for (const [path, body] of [
      ['/namespaces', { name: 'del' }],
      ['/namespaces/del/brokers', { name: 'doomed', authType: 'NONE' }],
    ] as const)
      assert.equal((await pubsubApi(ts, 'POST', path, body)).success, true);
    const raw = await subscribers(ts, N, 5, {
      prefix: 'doomed',
      filter: 'd/#',
      qos: 0,
      username: 'doomed.del',
    });
    t.after(() => endAll(raw));
    const publisher = RawClient.memory(ts.server, 5);
    t.after(() => publisher.destroy());
    await publisher.connect({ clientId: 'doomed-publisher', username: 'doomed.del' });
    // Deleted as the first slice arrives, by what the API's DELETE calls: an HTTP round trip
    // could land after the last slice.
    raw[0]!.socket.once('data', () => ts.server.tenancy.deleteBroker(ts.accountId, 'del', 'doomed'));
    publisher.send({
      type: 'publish',
      topic: 'd/x',
      payload: Buffer.from('x'),
      qos: 0,
      retain: false,
      dup: false,
    });
    await until(() => raw.every((c) => c.isClosed), 'every client of the deleted broker closed');
    // Deleted mid-fan-out: the pending slices were dropped, not delivered.
    const reached = raw.filter(hasPublish).length;
    assert.ok(reached < N, `${reached} of ${N} had the message`);
    for (const c of raw) {
      const disconnect = c.received.findIndex((p) => p.type === 'disconnect');
      assert.ok(disconnect >= 0, 'DISCONNECT 0x98');
      const packet = c.received[disconnect]!;
      assert.equal(packet.type === 'disconnect' ? packet.reasonCode : -1, 0x98);
      assert.equal(disconnect, c.received.length - 1, 'nothing after the DISCONNECT');
    }
    // The default broker still routes.
    const other = await mqttClient(t, ts, 5, 'bystander');
    await other.subscribeAsync('still/here', { qos: 1 });
    const got = new Promise<string>((resolve) => other.once('message', (_t, p) => resolve(p.toString())));
    await other.publishAsync('still/here', 'yes', { qos: 1 });
    assert.equal(await got, 'yes');
  });
});

describe('a delivery that throws in a split fan-out (an internal error)', () => {
  it('is reported once and skipped: the other deliveries go on and the message completes', async () => {
    const sub = { topicFilter: 'f' } as Subscription;
    let delivered = 0;
    const session = (throws: boolean): RoutedSession => ({
      clientId: throws ? 'broken' : 'ok',
      link: undefined,
      subscriptions: new Map([['f', sub]]),
      deliverMatched: () => {
        if (throws) throw new Error('boom');
        delivered++;
        return false;
      },
    });
    const subscribers = Array.from({ length: N }, (_, i) => ({
      key: session(i % 1000 === 7),
      values: [sub],
    }));
    const errors: unknown[] = [];
    const fanOut = new FanOut(
      { generation: 0 },
      () => false,
      (err) => errors.push(err),
    );
    const message = new Message({ topic: 'f', payload: Buffer.from('x'), qos: 0, retain: false });
    assert.equal(fanOut.add(message, { subscribers, groups: [] }) & ROUTED_PENDING, ROUTED_PENDING);
    const routed = await new Promise<number>((resolve) => fanOut.whenRouted(resolve, () => {}));
    assert.equal(routed & ROUTED_MATCHED, ROUTED_MATCHED);
    assert.equal(delivered, N - subscribers.filter((s) => s.key.clientId === 'broken').length);
    assert.equal(errors.length, 1);
    assert.equal(fanOut.pending, false);
  });
});

describe('messages to one topic queued behind a split fan-out', () => {
  it('reach each subscriber together, in publish order (one turn and one write each, not one per message) [MQTT-4.6.0-6]', async () => {
    const sub = { topicFilter: 't' } as Subscription;
    /** Every delivery in the order made: subscriber index, message number. */
    const log: [number, number][] = [];
    const subscribers = Array.from({ length: 2 * FAN_OUT_SLICE + 500 }, (_, i) => ({
      key: {
        clientId: `s${i}`,
        link: undefined,
        subscriptions: new Map([['t', sub]]),
        deliverMatched: (message: Message) => {
          log.push([i, message.payload[0]!]);
          return false;
        },
      } satisfies RoutedSession,
      values: [sub],
    }));
    const match = { subscribers, groups: [] };
    const fanOut = new FanOut(
      { generation: 0 },
      () => false,
      () => {},
    );
    const routed: Promise<number>[] = [];
    for (let m = 0; m < 6; m++) {
      const message = new Message({ topic: 't', payload: Buffer.from([m]), qos: 0, retain: false });
      assert.equal(fanOut.add(message, match) & ROUTED_PENDING, ROUTED_PENDING);
      routed.push(new Promise((resolve) => fanOut.whenRouted(resolve, () => {})));
    }
    await Promise.all(routed);
    assert.equal(fanOut.pending, false);
    assert.equal(log.length, 6 * subscribers.length);
    // Queued in one turn, the six (which match the same subscribers) go out subscriber by
    // subscriber: each one's six deliveries are adjacent, none waits for a turn of its own.
    for (let i = 0; i < log.length; i += 6) {
      const who = log[i]![0];
      assert.deepEqual(
        log.slice(i, i + 6),
        [0, 1, 2, 3, 4, 5].map((m) => [who, m]),
      );
    }
    // Every subscriber got all six, in order.
    const seen = new Map<number, number[]>();
    for (const [who, m] of log) seen.set(who, [...(seen.get(who) ?? []), m]);
    for (const got of seen.values()) assert.deepEqual(got, [0, 1, 2, 3, 4, 5]);
  });
});
