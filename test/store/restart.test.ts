/**
 * State that survives a server restart on the same data directory (SQLite store), seen by a
 * real client (MQTT.js v5 and v3.1.1): retained messages with their properties, persistent
 * sessions with their subscriptions and queued QoS 1/2 messages, inbound QoS 2 ids, and a
 * delayed will; an expired session does not come back. The crash (SIGKILL) variant is
 * test/interop/crash.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import mqtt from 'mqtt';
import type { Packet, PubackPacket } from '../../src/protocol/index.ts';
import { Message } from '../../src/router/index.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

function dataDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'pubsub-restart-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function serve(t: TestContext, dir: string, extra: Record<string, unknown> = {}): Promise<TestServer> {
  const ts = await startServer({ dataDir: dir, ...extra });
  t.after(() => ts.close());
  return ts;
}

async function connect(t: TestContext, url: string, options: mqtt.IClientOptions): Promise<mqtt.MqttClient> {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 0, ...options });
  t.after(() => client.endAsync(true));
  return client;
}

/** Connects and collects `count` messages from the first packet on (a resumed session's arrive right after CONNACK). */
function resume(
  t: TestContext,
  url: string,
  options: mqtt.IClientOptions,
  count: number,
): { client: mqtt.MqttClient; messages: ReturnType<typeof collect>; connack: Promise<mqtt.IConnackPacket> } {
  const client = mqtt.connect(url, { reconnectPeriod: 0, ...options });
  t.after(() => client.endAsync(true));
  const connack = new Promise<mqtt.IConnackPacket>((resolve) => client.once('connect', resolve));
  return { client, messages: collect(client, count), connack };
}

/** Collects `count` messages (or fails after 10 s). */
function collect(
  client: mqtt.MqttClient,
  count: number,
): Promise<{ topic: string; payload: string; packet: mqtt.IPublishPacket }[]> {
  const got: { topic: string; payload: string; packet: mqtt.IPublishPacket }[] = [];
  if (count === 0) return Promise.resolve(got);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`got ${got.length} of ${count} messages`)), 10_000);
    client.on('message', (topic, payload, packet) => {
      got.push({ topic, payload: `${payload}`, packet });
      if (got.length === count) {
        clearTimeout(timer);
        resolve(got);
      }
    });
  });
}

describe('restart on the same data directory', () => {
  it('retained messages come back with their properties; a deleted one stays deleted', async (t) => {
    const dir = dataDir(t);
    const first = await serve(t, dir);
    const pub = await connect(t, first.url, { protocolVersion: 5 });
    await pub.publishAsync('r/a', 'alpha', {
      qos: 1,
      retain: true,
      properties: {
        contentType: 'text/plain',
        userProperties: { k: 'v' },
        correlationData: Buffer.from([1, 2]),
      },
    });
    await pub.publishAsync('r/b', 'beta', { qos: 0, retain: true });
    await pub.publishAsync('r/c', 'gamma', { qos: 1, retain: true });
    await pub.publishAsync('r/c', '', { qos: 1, retain: true });
    await pub.endAsync();
    await first.close();

    const second = await serve(t, dir);
    const sub = await connect(t, second.url, { protocolVersion: 5 });
    const got = collect(sub, 2);
    await sub.subscribeAsync('r/#', { qos: 1 });
    const messages = (await got).sort((a, b) => a.topic.localeCompare(b.topic));
    assert.deepEqual(
      messages.map((m) => [m.topic, m.payload, m.packet.retain]),
      [
        ['r/a', 'alpha', true],
        ['r/b', 'beta', true],
      ],
    );
    assert.equal(messages[0]!.packet.properties?.contentType, 'text/plain');
    assert.deepEqual({ ...messages[0]!.packet.properties?.userProperties }, { k: 'v' });
    assert.deepEqual(messages[0]!.packet.properties?.correlationData, Buffer.from([1, 2]));
  });

  it('a persistent session keeps its subscriptions and queued QoS 1/2 messages, in order', async (t) => {
    const dir = dataDir(t);
    const first = await serve(t, dir);
    const sub = await connect(t, first.url, {
      protocolVersion: 5,
      clientId: 'keeper',
      clean: false,
      properties: { sessionExpiryInterval: 3600 },
    });
    await sub.subscribeAsync({ 'q/1': { qos: 1 }, 'q/2': { qos: 2, nl: false } });
    await sub.endAsync();
    const pub = await connect(t, first.url, { protocolVersion: 4 });
    for (let i = 0; i < 20; i++) {
      await pub.publishAsync('q/1', `one-${i}`, { qos: 1 });
      await pub.publishAsync('q/2', `two-${i}`, { qos: 2 });
    }
    await pub.endAsync();
    await first.close();

    const second = await serve(t, dir);
    const { messages: got } = resume(
      t,
      second.url,
      { protocolVersion: 5, clientId: 'keeper', clean: false, properties: { sessionExpiryInterval: 3600 } },
      40,
    );
    const messages = await got;
    for (const topic of ['q/1', 'q/2']) {
      const prefix = topic === 'q/1' ? 'one' : 'two';
      assert.deepEqual(
        messages.filter((m) => m.topic === topic).map((m) => m.payload),
        Array.from({ length: 20 }, (_, i) => `${prefix}-${i}`),
      );
    }
    assert.deepEqual([...second.server.defaultBroker.sessions.get('keeper')!.subscriptions.keys()].sort(), [
      'q/1',
      'q/2',
    ]);
  });

  it('a v3.1.1 clean-session-0 session comes back (session present) and gets what was queued', async (t) => {
    const dir = dataDir(t);
    const first = await serve(t, dir);
    const sub = await connect(t, first.url, { protocolVersion: 4, clientId: 'v3keeper', clean: false });
    await sub.subscribeAsync('v3/t', { qos: 1 });
    await sub.endAsync();
    const pub = await connect(t, first.url, { protocolVersion: 4 });
    await pub.publishAsync('v3/t', 'while away', { qos: 1 });
    await first.close();

    const second = await serve(t, dir);
    const { messages, connack } = resume(
      t,
      second.url,
      { protocolVersion: 4, clientId: 'v3keeper', clean: false },
      1,
    );
    assert.equal((await connack).sessionPresent, true);
    const [message] = await messages;
    assert.equal(message!.payload, 'while away');
  });

  it('a session that expired while the server was down is gone, and its delayed will published', async (t) => {
    const dir = dataDir(t);
    const first = await serve(t, dir);
    const watcher = await connect(t, first.url, {
      protocolVersion: 5,
      clientId: 'watcher',
      clean: false,
      properties: { sessionExpiryInterval: 3600 },
    });
    await watcher.subscribeAsync('wills/#', { qos: 1 });
    await watcher.endAsync();
    const shortLived = await connect(t, first.url, {
      protocolVersion: 5,
      clientId: 'short',
      clean: false,
      properties: { sessionExpiryInterval: 1 },
      will: {
        topic: 'wills/short',
        payload: Buffer.from('gone'),
        qos: 1,
        properties: { willDelayInterval: 60 },
      },
    });
    await shortLived.subscribeAsync('x', { qos: 1 });
    shortLived.stream.destroy(); // no DISCONNECT: the will is kept for its delay (bounded by the expiry)
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(first.server.defaultBroker.sessions.has('short'));
    await first.close();
    await new Promise((r) => setTimeout(r, 1100));

    const second = await serve(t, dir);
    assert.equal(second.server.defaultBroker.sessions.has('short'), false, 'the expired session is gone');
    assert.ok(second.server.defaultBroker.sessions.has('watcher'));
    const { messages } = resume(
      t,
      second.url,
      { protocolVersion: 5, clientId: 'watcher', clean: false, properties: { sessionExpiryInterval: 3600 } },
      1,
    );
    const [will] = await messages;
    assert.deepEqual([will!.topic, will!.payload], ['wills/short', 'gone']);
    const again = resume(t, second.url, { protocolVersion: 5, clientId: 'short', clean: false }, 0);
    assert.equal((await again.connack).sessionPresent, false);
  });

  it('in-flight state comes back: unacked QoS 1 re-sent with DUP, PUBREC’d QoS 2 gets PUBREL, inbound QoS 2 ids kept', async (t) => {
    const dir = dataDir(t);
    const persistent = { clean: false, properties: { sessionExpiryInterval: 600 } };
    const first = await serve(t, dir);
    const sub = RawClient.memory(first.server, 5);
    await sub.connect({ clientId: 'inflight-sub', ...persistent });
    sub.send({
      type: 'subscribe',
      packetId: 1,
      subscriptions: [
        { topicFilter: 'f/#', qos: 2, noLocal: false, retainAsPublished: false, retainHandling: 0 },
      ],
    });
    await sub.expect('suback');
    const pub = RawClient.memory(first.server, 5);
    await pub.connect({ clientId: 'inflight-pub', ...persistent });
    const publish = (topic: string, qos: 1 | 2, packetId: number, dup = false): Packet => ({
      type: 'publish',
      topic,
      payload: Buffer.from(topic),
      qos,
      retain: false,
      dup,
      packetId,
    });
    pub.send(publish('f/one', 1, 1));
    const one = await sub.expect('publish');
    pub.send(publish('f/two', 2, 2));
    const two = await sub.expect('publish');
    sub.send({ type: 'pubrec', packetId: two.packetId!, reasonCode: 0 });
    assert.equal(((await sub.next()) as PubackPacket).type, 'pubrel');
    // The publisher's QoS 2 id awaits PUBREL: it got PUBREC, and has not released it yet.
    assert.equal((await pub.next()).type, 'puback');
    assert.equal((await pub.next()).type, 'pubrec');
    await first.close();

    const second = await serve(t, dir);
    const sub2 = RawClient.memory(second.server, 5);
    assert.equal((await sub2.connect({ clientId: 'inflight-sub', ...persistent })).sessionPresent, true);
    const resent = await sub2.expect('publish');
    assert.deepEqual([resent.topic, resent.packetId, resent.dup], ['f/one', one.packetId, true]); // [MQTT-4.4.0-1]
    const rel = (await sub2.next()) as PubackPacket;
    assert.deepEqual([rel.type, rel.packetId], ['pubrel', two.packetId]);

    const pub2 = RawClient.memory(second.server, 5);
    assert.equal((await pub2.connect({ clientId: 'inflight-pub', ...persistent })).sessionPresent, true);
    pub2.send(publish('f/two', 2, 2, true)); // a re-sent PUBLISH of a stored id is not delivered again
    assert.equal(((await pub2.next()) as PubackPacket).type, 'pubrec');
    pub2.send({ type: 'pubrel', packetId: 2, reasonCode: 0 });
    const comp = (await pub2.next()) as PubackPacket;
    assert.deepEqual([comp.type, comp.reasonCode], ['pubcomp', 0], 'the id was known after the restart');
    await sub2.expectSilence();
  });

  it('a deleted broker takes its retained messages and sessions out of the store', async (t) => {
    const dir = dataDir(t);
    const ts = await serve(t, dir);
    const { tenancy } = ts.server;
    tenancy.createNamespace(ts.accountId, { name: 'gone' });
    const record = tenancy.createBroker(ts.accountId, 'gone', { name: 'soon', authType: 'NONE' });
    const broker = tenancy.tenant(ts.accountId, 'gone', 'soon').broker;
    broker.publish(new Message({ topic: 'r', payload: Buffer.from('v'), qos: 1, retain: true }));
    broker.openSession('c', false).session.expiryInterval = 600;
    const store = ts.server.messageStore;
    store.flush();
    assert.equal(store.load(record.id).retained.length, 1);
    assert.equal(store.load(record.id).sessions.length, 1);
    tenancy.deleteBroker(ts.accountId, 'gone', 'soon');
    store.flush();
    assert.deepEqual(store.load(record.id), { retained: [], sessions: [] });
  });
});
