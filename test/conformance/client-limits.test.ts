/**
 * The per-client bounds of docs/limits.md, each driven by MQTT.js (v5 and v3.1.1) the way an
 * application would hit it, on a server whose bounds are small enough to reach: the reason code
 * the client sees, the `refusedOverLimit` counter of the broker (pubsub_limit_refusals_total),
 * and a QoS 1 round trip to a bystander afterwards, which shows the server kept serving.
 * mosquitto_pub and mosquitto_sub (v5) show the same codes from another client library.
 */
import assert from 'node:assert/strict';
import { after, before, describe, type TestContext, test } from 'node:test';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { LimitName } from '../../src/session/index.ts';
import { spawnChild, until, WAIT_MS } from '../helpers/child-process.ts';
import { describeWithTool, mosquittoClients, mosquittoPub } from '../helpers/interop-tools.ts';
import type { RawClient } from '../helpers/raw-client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';
import {
  assertBrokerHealthy,
  connectBystander,
  connectV5,
  packet,
  str,
  varint,
  Wire,
} from '../helpers/wire.ts';

const LIMITS = {
  maxTopicLength: 64,
  maxSubscriptionsPerClient: 3,
  maxFiltersPerSubscribe: 5,
  maxUserProperties: 8,
  maxPropertiesBytes: 256,
  maxWillBytes: 128,
};

let ts: TestServer;
let bystander: RawClient;
before(async () => {
  ts = await startServer(LIMITS);
  bystander = await connectBystander(ts.port);
});
after(async () => {
  bystander?.destroy();
  await ts?.close();
});

type Version = 4 | 5;
const VERSIONS: Version[] = [5, 4];
const name = (v: Version): string => (v === 5 ? 'v5' : 'v3.1.1');
let ids = 0;
const nextId = (): string => `limits-${process.pid}-${++ids}`;

const refused = (limit: LimitName): number => ts.server.defaultBroker.stats.refusedOverLimit[limit];

function options(version: Version, extra: IClientOptions = {}): IClientOptions {
  return {
    protocolVersion: version,
    clientId: nextId(),
    reconnectPeriod: 0,
    connectTimeout: WAIT_MS,
    ...extra,
  };
}

async function connect(t: TestContext, version: Version, extra: IClientOptions = {}): Promise<MqttClient> {
  const client = await mqtt.connectAsync(ts.url, options(version, extra));
  t.after(() => client.end(true));
  return client;
}

/**
 * How the server ends a connection: the v5 DISCONNECT reason code, or `closed` when the socket
 * closed with none (what a v3 client sees).
 */
function ending(client: MqttClient): Promise<number | 'closed'> {
  return new Promise((resolve) => {
    client.once('disconnect', (packet) => resolve(packet.reasonCode ?? 0));
    client.once('close', () => resolve('closed'));
  });
}

/** A CONNECT the server refuses: the CONNACK code (MQTT.js error code), or `closed` without one. */
function refusedConnect(version: Version, extra: IClientOptions): Promise<number | 'closed'> {
  const client = mqtt.connect(ts.url, options(version, extra));
  return new Promise((resolve, reject) => {
    client.once('connect', () => {
      client.end(true);
      reject(new Error('CONNECT accepted'));
    });
    client.once('error', (err) => {
      client.end(true);
      resolve((err as Error & { code: number }).code);
    });
    client.once('close', () => resolve('closed'));
  });
}

/**
 * The SUBACK codes for `filters`, one each: MQTT.js resolves with the granted QoS when every
 * filter succeeds and rejects with the SUBACK otherwise.
 */
async function subscribeCodes(client: MqttClient, filters: string[]): Promise<number[]> {
  try {
    return (await client.subscribeAsync(filters, { qos: 1 })).map((g) => g.qos);
  } catch (err) {
    const suback = (err as { packet?: { granted?: number[] } }).packet;
    if (suback?.granted === undefined) throw err;
    return suback.granted;
  }
}

describe('--max-subscriptions-per-client', () => {
  for (const version of VERSIONS) {
    test(`${name(version)}: a new filter past the cap gets SUBACK ${version === 5 ? '0x97 Quota exceeded' : '0x80'}; re-subscribing a held one does not count twice`, async (t) => {
      const client = await connect(t, version);
      const before = refused('max_subscriptions_per_client');
      assert.deepEqual(await subscribeCodes(client, ['s/1', 's/2', 's/3']), [1, 1, 1]);
      // s/2 is replaced [MQTT-3.8.4-3]; s/4 would be the fourth.
      assert.deepEqual(await subscribeCodes(client, ['s/2', 's/4']), [1, version === 5 ? 0x97 : 0x80]);
      assert.equal(refused('max_subscriptions_per_client'), before + 1);
      // Unsubscribing makes room again.
      await client.unsubscribeAsync('s/1');
      assert.deepEqual(await subscribeCodes(client, ['s/4']), [1]);
      assert.ok(client.connected, 'the connection stays');
      await assertBrokerHealthy(ts.port, bystander);
    });
  }
});

describe('--max-filters-per-subscribe', () => {
  for (const version of VERSIONS) {
    test(`${name(version)}: a SUBSCRIBE of more filters is refused while decoded: ${version === 5 ? 'DISCONNECT 0x97' : 'close'}`, async (t) => {
      const client = await connect(t, version);
      const before = refused('max_filters_per_subscribe');
      const end = ending(client);
      client.subscribe(['f/1', 'f/2', 'f/3', 'f/4', 'f/5', 'f/6'], { qos: 0 });
      assert.equal(await end, version === 5 ? 0x97 : 'closed');
      assert.equal(refused('max_filters_per_subscribe'), before + 1);
      await assertBrokerHealthy(ts.port, bystander);
    });
  }
});

/** `n` User Property pairs, as MQTT.js takes them (one name, its values repeated). */
const userProperties = (n: number): Record<string, string[]> => ({ k: Array.from({ length: n }, () => 'v') });

describe('--max-user-properties and --max-properties-bytes (v5)', () => {
  test('a PUBLISH at the cap is delivered; one pair more is DISCONNECT 0x95 Packet too large', async (t) => {
    const client = await connect(t, 5);
    await client.subscribeAsync('p/at-cap', { qos: 1 });
    const got = new Promise<number>((resolve) =>
      client.once('message', (_topic, _payload, packet) =>
        resolve(Object.values(packet.properties?.userProperties ?? {}).flat().length),
      ),
    );
    await client.publishAsync('p/at-cap', 'x', { qos: 1, properties: { userProperties: userProperties(8) } });
    assert.equal(await got, 8);
    const before = refused('max_user_properties');
    const end = ending(client);
    client.publish('p/over', 'x', { qos: 1, properties: { userProperties: userProperties(9) } });
    assert.equal(await end, 0x95);
    assert.equal(refused('max_user_properties'), before + 1);
    await assertBrokerHealthy(ts.port, bystander);
  });

  test('a PUBLISH of 10,000 user-property pairs, sent on 200 connections, is refused at once each time; others keep being served', async (t) => {
    // Only the count bound is low here: the block's 70,000 bytes are within the bytes bound.
    const server = await startServer({ maxUserProperties: 8 });
    t.after(() => server.close());
    const others = await connectBystander(server.port);
    t.after(() => others.destroy());
    const pairs: number[] = [];
    for (let i = 0; i < 10_000; i++) pairs.push(0x26, ...str('k'), ...str('v'));
    const flood = Buffer.from(packet(0x30, [...str('p/flood'), ...varint(pairs.length), ...pairs, 0x78]));
    const stats = server.server.defaultBroker.stats;
    const cpu = process.cpuUsage();
    for (let i = 0; i < 200; i++) {
      const w = await Wire.tcp(server.port, 5);
      t.after(() => w.destroy());
      await w.handshake(connectV5(nextId()));
      w.send(flood);
      const f = await w.frame();
      assert.deepEqual([f.first, f.body[0]], [0xe0, 0x95], 'DISCONNECT 0x95');
    }
    assert.equal(stats.refusedOverLimit.max_user_properties, 200);
    assert.equal(stats.received[0], 0, 'refused in the decoder: none reached the PUBLISH handler');
    // Unbounded, each took ~3 ms of CPU to decode and route (307/s on a full core).
    const used = process.cpuUsage(cpu);
    t.diagnostic(
      `200 refusals: ${Math.round((used.user + used.system) / 1000)} ms of CPU, test clients included`,
    );
    await assertBrokerHealthy(server.port, others);
  });

  test('a SUBSCRIBE and an UNSUBSCRIBE over the cap are DISCONNECT 0x95 too', async (t) => {
    for (const send of [
      (c: MqttClient) => c.subscribe('u/1', { qos: 0, properties: { userProperties: userProperties(9) } }),
      (c: MqttClient) => c.unsubscribe('u/1', { properties: { userProperties: userProperties(9) } }),
    ]) {
      const client = await connect(t, 5);
      const end = ending(client);
      send(client);
      assert.equal(await end, 0x95);
    }
    await assertBrokerHealthy(ts.port, bystander);
  });

  test('a PUBLISH whose property block is over the bytes cap is DISCONNECT 0x95', async (t) => {
    const client = await connect(t, 5);
    const before = refused('max_properties_bytes');
    const end = ending(client);
    client.publish('p/big', 'x', { qos: 1, properties: { contentType: 'c'.repeat(300) } });
    assert.equal(await end, 0x95);
    assert.equal(refused('max_properties_bytes'), before + 1);
    await assertBrokerHealthy(ts.port, bystander);
  });

  test('a CONNECT or a will over either cap is CONNACK 0x95, counted under both metrics', async () => {
    const broker = ts.server.defaultBroker;
    const tooLargeBefore = broker.stats.connectionsRefused.get('PACKET_TOO_LARGE') ?? 0;
    const pairsBefore = refused('max_user_properties');
    const bytesBefore = refused('max_properties_bytes');
    assert.equal(await refusedConnect(5, { properties: { userProperties: userProperties(9) } }), 0x95);
    assert.equal(
      await refusedConnect(5, {
        will: {
          topic: 'w/props',
          payload: Buffer.from('x'),
          qos: 0,
          retain: false,
          properties: { contentType: 'c'.repeat(300) },
        },
      }),
      0x95,
    );
    assert.equal(refused('max_user_properties'), pairsBefore + 1);
    assert.equal(refused('max_properties_bytes'), bytesBefore + 1);
    assert.equal(broker.stats.connectionsRefused.get('PACKET_TOO_LARGE'), tooLargeBefore + 2);
    await assertBrokerHealthy(ts.port, bystander);
  });
});

describe('--max-will-bytes', () => {
  for (const version of VERSIONS) {
    test(`${name(version)}: a will of more bytes (topic + payload + properties) is ${version === 5 ? 'CONNACK 0x95' : 'a close without CONNACK'}; one within connects`, async (t) => {
      const will = (payload: number) => ({
        topic: 'w/size',
        payload: Buffer.alloc(payload, 0x61),
        qos: 0 as const,
        retain: false,
      });
      // 2 + 6 (topic) + 2 + 100 (payload), plus a 1-byte empty property block in v5.
      await connect(t, version, { will: will(100) });
      const before = refused('max_will_bytes');
      assert.equal(await refusedConnect(version, { will: will(120) }), version === 5 ? 0x95 : 'closed');
      assert.equal(refused('max_will_bytes'), before + 1);
      await assertBrokerHealthy(ts.port, bystander);
    });
  }
});

describe('--max-topic-length', () => {
  const long = `t/${'x'.repeat(63)}`; // 65 bytes
  const atCap = `t/${'x'.repeat(62)}`; // 64 bytes

  for (const version of VERSIONS) {
    test(`${name(version)}: a filter over it gets SUBACK ${version === 5 ? '0x8F' : '0x80'} alone; a topic at it is routed`, async (t) => {
      const client = await connect(t, version);
      const before = refused('max_topic_length');
      assert.deepEqual(await subscribeCodes(client, [atCap, long]), [1, version === 5 ? 0x8f : 0x80]);
      assert.equal(refused('max_topic_length'), before + 1);
      const got = new Promise<string>((resolve) => client.once('message', (topic) => resolve(topic)));
      await client.publishAsync(atCap, 'x', { qos: 1 });
      assert.equal(await got, atCap);
    });

    test(`${name(version)}: a QoS 1 PUBLISH over it is ${version === 5 ? 'PUBACK 0x90 and the connection stays' : 'a close'}`, async (t) => {
      const client = await connect(t, version);
      const before = refused('max_topic_length');
      if (version === 5) {
        await assert.rejects(client.publishAsync(long, 'x', { qos: 1 }), (err: Error & { code: number }) => {
          assert.equal(err.code, 0x90);
          return true;
        });
        assert.ok(client.connected);
      } else {
        const end = ending(client);
        client.publish(long, 'x', { qos: 1 });
        assert.equal(await end, 'closed');
      }
      assert.equal(refused('max_topic_length'), before + 1);
      await assertBrokerHealthy(ts.port, bystander);
    });

    test(`${name(version)}: a will topic over it is ${version === 5 ? 'CONNACK 0x90' : 'a close without CONNACK'}`, async () => {
      const before = refused('max_topic_length');
      const code = await refusedConnect(version, {
        will: { topic: long, payload: Buffer.from('x'), qos: 0, retain: false },
      });
      assert.equal(code, version === 5 ? 0x90 : 'closed');
      assert.equal(refused('max_topic_length'), before + 1);
    });
  }

  test('v5: a QoS 0 PUBLISH over it is DISCONNECT 0x90 (no acknowledgement could carry it)', async (t) => {
    const client = await connect(t, 5);
    const end = ending(client);
    client.publish(long, 'x', { qos: 0 });
    assert.equal(await end, 0x90);
    await assertBrokerHealthy(ts.port, bystander);
  });
});

describe('byte caps count topic, properties and payload (Message.heldBytes)', () => {
  test('--max-retained-bytes: 1-byte payloads with large properties and topics fill it', async (t) => {
    const server = await startServer({ maxRetainedBytes: 1000 });
    t.after(() => server.close());
    const client = await mqtt.connectAsync(server.url, options(5));
    t.after(() => client.end(true));
    const broker = server.server.defaultBroker;
    // Each: topic 5 bytes, payload 1, a 400-byte Content Type (3 + 400 encoded): 409 bytes.
    for (const topic of ['r/aaa', 'r/bbb', 'r/ccc']) {
      await client.publishAsync(topic, 'x', {
        qos: 1,
        retain: true,
        properties: { contentType: 'c'.repeat(400) },
      });
    }
    assert.deepEqual(
      [broker.retained.size, broker.retained.bytes, broker.stats.droppedRetainedFull],
      [2, 818, 1],
    );
  });

  test('--max-queued-bytes: an offline session queues messages by their whole size', async (t) => {
    const server = await startServer({ maxQueuedBytes: 1000 });
    t.after(() => server.close());
    const clientId = nextId();
    const sub = await mqtt.connectAsync(
      server.url,
      options(5, { clientId, clean: false, properties: { sessionExpiryInterval: 60 } }),
    );
    await sub.subscribeAsync('q/#', { qos: 1 });
    await sub.endAsync();
    const pub = await mqtt.connectAsync(server.url, options(5));
    t.after(() => pub.end(true));
    for (const topic of ['q/aaa', 'q/bbb', 'q/ccc']) {
      await pub.publishAsync(topic, 'x', { qos: 1, properties: { contentType: 'c'.repeat(400) } });
    }
    const broker = server.server.defaultBroker;
    await until(() => broker.stats.droppedQueueFull === 1, 'the third message dropped');
    // Listening before CONNACK: the queued messages may arrive in the same read.
    const back = mqtt.connect(
      server.url,
      options(5, { clientId, clean: false, properties: { sessionExpiryInterval: 60 } }),
    );
    t.after(() => back.end(true));
    const topics: string[] = [];
    back.on('message', (topic) => topics.push(topic));
    await until(() => topics.length === 2, 'the two queued messages');
    assert.deepEqual(topics, ['q/aaa', 'q/bbb']);
  });
});

describeWithTool('mosquitto_pub/mosquitto_sub v5 over the bounds', mosquittoClients, () => {
  const base = (): string[] => ['-h', '127.0.0.1', '-p', String(ts.port), '-V', '5', '-d'];

  test('mosquitto_pub: a topic over --max-topic-length is PUBACK 0x90; 9 user properties DISCONNECT 0x95', async (t) => {
    const long = await mosquittoPub(t, [...base(), '-q', '1', '-t', `t/${'x'.repeat(63)}`, '-m', 'x']);
    assert.match(long.lines.join('\n'), /received PUBACK \(Mid: 1, RC:144\)/, long.report());
    const props: string[] = [];
    for (let i = 0; i < 9; i++) props.push('-D', 'publish', 'user-property', `k${i}`, 'v');
    const over = await mosquittoPub(t, [...base(), '-q', '1', '-t', 'p/mosquitto', '-m', 'x', ...props]);
    assert.match(over.lines.join('\n'), /Received DISCONNECT \(149\)/, over.report());
    assert.notEqual(over.exit!.code, 0, over.report());
    await assertBrokerHealthy(ts.port, bystander);
  });

  test('mosquitto_sub: a filter over --max-topic-length gets SUBACK 0x8F', async (t) => {
    const sub = spawnChild(t, 'mosquitto_sub', [
      ...base(),
      '-t',
      `t/${'x'.repeat(63)}`,
      '-C',
      '1',
      '-W',
      '5',
    ]);
    await sub.waitForExit();
    assert.ok(sub.lines.includes('Subscribed (mid: 1): 143'), sub.report());
  });
});
