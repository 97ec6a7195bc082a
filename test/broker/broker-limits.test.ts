/**
 * A broker's own limits (the broker object's `limits`, docs/limits.md) with real MQTT.js clients,
 * v3.1.1 and v5: each limit refuses with its reason code on the broker that set it and never on
 * another broker of the same server; the inbound rates throttle (the client is slowed, its QoS 1
 * acks still come, it is never disconnected) or, with `rate_limit_action: disconnect`, end it
 * with DISCONNECT 0x96; a change through the API applies to connected clients at once; every
 * refusal moves `pubsub_limit_refusals_total{namespace,broker,limit}`.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { ConnectReturnCode, ReasonCode } from '../../src/protocol/index.ts';
import { until, WAIT_MS } from '../helpers/child-process.ts';
import { connackCode } from '../helpers/connack-code.ts';
import { uniqueName } from '../helpers/interop-tools.ts';
import { seriesValue } from '../helpers/prometheus.ts';
import { pubsubApi, startServer, type TestServer } from '../helpers/server.ts';

type Version = 4 | 5;
const VERSIONS: Version[] = [4, 5];
const NS = 'lim';

/** A server with anonymous brokers `a` (given `limits`) and `b` (none) in namespace `lim`. */
async function serve(t: TestContext, limits: Record<string, unknown>): Promise<TestServer> {
  const ts = await startServer({ httpPort: 0 });
  t.after(() => ts.close());
  assert.equal((await pubsubApi(ts, 'POST', '/namespaces', { name: NS })).success, true);
  for (const [name, own] of [
    ['a', limits],
    ['b', undefined],
  ] as const) {
    const made = await pubsubApi(ts, 'POST', `/namespaces/${NS}/brokers`, {
      name,
      authType: 'NONE',
      ...(own === undefined ? {} : { limits: own }),
    });
    assert.equal(made.success, true, JSON.stringify(made.errors));
  }
  return ts;
}

/** MQTT.js options naming broker `name` by the user name `<broker>.<namespace>`. */
function optionsFor(name: string, version: Version, extra: IClientOptions = {}): IClientOptions {
  return {
    protocolVersion: version,
    clientId: uniqueName(`lim-${name}`),
    username: `${name}.${NS}`,
    reconnectPeriod: 0,
    connectTimeout: WAIT_MS,
    ...extra,
  };
}

async function connect(
  t: TestContext,
  ts: TestServer,
  name: string,
  version: Version,
  extra: IClientOptions = {},
): Promise<MqttClient> {
  const client = await mqtt.connectAsync(ts.url, optionsFor(name, version, extra));
  t.after(() => client.endAsync(true));
  return client;
}

/** The CONNACK code a CONNECT to broker `name` gets (0: accepted). */
const connackOf = (ts: TestServer, name: string, version: Version): Promise<number> =>
  connackCode(ts.url, version, undefined, { username: `${name}.${NS}` });

/** The SUBACK codes for `filters` (MQTT.js rejects a SUBACK with any failure; its packet has them all). */
async function subackCodes(client: MqttClient, filters: string[]): Promise<number[]> {
  try {
    return (await client.subscribeAsync(filters)).map((g) => g.qos);
  } catch (err) {
    const packet = (err as { packet?: { granted?: (number | { qos: number })[] } }).packet;
    if (packet?.granted === undefined) throw err;
    return packet.granted.map((g) => (typeof g === 'number' ? g : g.qos));
  }
}

async function refusals(ts: TestServer, broker: string, limit: string): Promise<number> {
  const text = await (await fetch(`${ts.apiUrl}/metrics`)).text();
  return seriesValue(text, 'pubsub_limit_refusals_total', { namespace: NS, broker, limit });
}

/** What MQTT.js reports for a refused filter: v5 the reason code, v3.1.1 0x80. */
const QUOTA: Record<Version, number> = { 5: ReasonCode.QuotaExceeded, 4: 0x80 };
const FILTER_INVALID: Record<Version, number> = { 5: ReasonCode.TopicFilterInvalid, 4: 0x80 };
const CONNACK_QUOTA: Record<Version, number> = {
  5: ReasonCode.QuotaExceeded,
  4: ConnectReturnCode.ServerUnavailable,
};

describe('limits.max_connections', () => {
  for (const version of VERSIONS) {
    it(`v${version}: past the broker's cap a CONNECT gets CONNACK ${CONNACK_QUOTA[version]}; another broker's clients are not refused; a takeover is not a new connection`, async (t) => {
      const ts = await serve(t, { max_connections: 2 });
      const first = await connect(t, ts, 'a', version);
      await connect(t, ts, 'a', version);
      assert.equal(await connackOf(ts, 'a', version), CONNACK_QUOTA[version]);
      for (let i = 0; i < 3; i++) await connect(t, ts, 'b', version);
      assert.equal(await refusals(ts, 'a', 'max_connections'), 1);
      assert.equal(await refusals(ts, 'b', 'max_connections'), 0);
      // The same client id again takes its session over: one connection replaces another.
      const again = await connect(t, ts, 'a', version, { clientId: first.options.clientId! });
      assert.equal(again.connected, true);
    });
  }
});

describe('limits.max_subscriptions_per_client', () => {
  for (const version of VERSIONS) {
    it(`v${version}: a new filter past the broker's cap gets SUBACK ${QUOTA[version]}; another broker's client is not refused`, async (t) => {
      const ts = await serve(t, { max_subscriptions_per_client: 2 });
      const a = await connect(t, ts, 'a', version);
      assert.deepEqual(await subackCodes(a, ['s/1', 's/2', 's/3']), [0, 0, QUOTA[version]]);
      const b = await connect(t, ts, 'b', version);
      assert.deepEqual(await subackCodes(b, ['s/1', 's/2', 's/3']), [0, 0, 0]);
      assert.equal(await refusals(ts, 'a', 'max_subscriptions_per_client'), 1);
    });
  }

  it('raised through the API, it applies to the connected client at once', async (t) => {
    const ts = await serve(t, { max_subscriptions_per_client: 1 });
    const a = await connect(t, ts, 'a', 5);
    assert.deepEqual(await subackCodes(a, ['s/1', 's/2']), [0, QUOTA[5]]);
    const patched = await pubsubApi(ts, 'PATCH', `/namespaces/${NS}/brokers/a`, {
      limits: { max_subscriptions_per_client: 3 },
    });
    assert.equal(patched.success, true);
    assert.deepEqual(await subackCodes(a, ['s/2', 's/3']), [0, 0]);
  });
});

describe('limits.max_topic_levels and max_topic_length', () => {
  for (const version of VERSIONS) {
    it(`v${version}: a filter deeper or longer than the broker's limits gets SUBACK ${FILTER_INVALID[version]}; another broker takes it`, async (t) => {
      const ts = await serve(t, { max_topic_levels: 2, max_topic_length: 16 });
      const deep = 'x/y/z';
      const long = 'l'.repeat(17);
      const a = await connect(t, ts, 'a', version);
      assert.deepEqual(await subackCodes(a, [deep, long, 'x/y']), [
        FILTER_INVALID[version],
        FILTER_INVALID[version],
        0,
      ]);
      const b = await connect(t, ts, 'b', version);
      assert.deepEqual(await subackCodes(b, [deep, long]), [0, 0]);
      assert.equal(await refusals(ts, 'a', 'max_topic_levels'), 1);
      assert.equal(await refusals(ts, 'a', 'max_topic_length'), 1);
    });
  }

  it('v5: a QoS 1 PUBLISH to a topic deeper than the broker allows gets PUBACK 0x90; the connection stays', async (t) => {
    const ts = await serve(t, { max_topic_levels: 2 });
    const a = await connect(t, ts, 'a', 5);
    await assert.rejects(a.publishAsync('x/y/z', 'deep', { qos: 1 }), { code: ReasonCode.TopicNameInvalid });
    await a.publishAsync('x/y', 'ok', { qos: 1 });
    const b = await connect(t, ts, 'b', 5);
    await b.publishAsync('x/y/z', 'deep', { qos: 1 });
    assert.equal(await refusals(ts, 'a', 'max_topic_levels'), 1);
  });
});

describe('limits.max_retained_messages and max_retained_bytes', () => {
  it("past the broker's retained count or bytes a retained message is delivered but not kept; another broker keeps it", async (t) => {
    const ts = await serve(t, { max_retained_messages: 1, max_retained_bytes: 4096 });
    for (const name of ['a', 'b']) {
      const publisher = await connect(t, ts, name, 5);
      await publisher.publishAsync('r/1', 'one', { qos: 1, retain: true });
      await publisher.publishAsync('r/2', 'two', { qos: 1, retain: true });
      await publisher.publishAsync('r/1', Buffer.alloc(5000), { qos: 1, retain: true });
    }
    const heldBy = async (name: string): Promise<string[]> => {
      const reader = await connect(t, ts, name, 5);
      const held: string[] = [];
      reader.on('message', (topic, payload) => held.push(`${topic} ${payload.length}`));
      await reader.subscribeAsync('#', { qos: 1 });
      await sleep(200);
      return held.sort();
    };
    assert.deepEqual(
      await heldBy('a'),
      ['r/1 3'],
      'a new topic past the count, a replacement past the bytes',
    );
    assert.deepEqual(await heldBy('b'), ['r/1 5000', 'r/2 3']);
    assert.equal(await refusals(ts, 'a', 'max_retained_messages'), 1);
    assert.equal(await refusals(ts, 'a', 'max_retained_bytes'), 1);
    assert.equal(await refusals(ts, 'b', 'max_retained_messages'), 0);
  });
});

describe('limits.max_queued_messages', () => {
  it("an offline session of the broker queues at most the broker's count; another broker's queues its server default", async (t) => {
    const ts = await serve(t, { max_queued_messages: 2 });
    for (const name of ['a', 'b']) {
      const clientId = uniqueName(`q-${name}`);
      const options = { clientId, clean: false, properties: { sessionExpiryInterval: 60 } };
      const sub = await connect(t, ts, name, 5, options);
      await sub.subscribeAsync('q/#', { qos: 1 });
      await sub.endAsync();
      const pub = await connect(t, ts, name, 5);
      for (let i = 0; i < 5; i++) await pub.publishAsync(`q/${i}`, String(i), { qos: 1 });
      const back = mqtt.connect(ts.url, optionsFor(name, 5, options));
      t.after(() => back.endAsync(true));
      const got: string[] = [];
      back.on('message', (topic) => got.push(topic));
      const want = name === 'a' ? 2 : 5;
      await until(() => got.length >= want, `${want} queued messages on broker ${name}`);
      await sleep(200);
      assert.equal(got.length, want);
    }
  });
});

/**
 * Publishes QoS 1 messages one after another (each once the last is acknowledged, so nothing
 * waits unread) for `ms`; the number acknowledged in that time.
 */
async function publishFor(client: MqttClient, ms: number, payload: Buffer | string = 'x'): Promise<number> {
  const end = Date.now() + ms;
  let acked = 0;
  while (Date.now() < end) {
    await client.publishAsync('rate/t', payload, { qos: 1 });
    acked++;
  }
  return acked;
}

describe('inbound rates, throttled (the default)', () => {
  for (const version of VERSIONS) {
    it(`v${version}: a client over limits.max_client_messages_per_second is slowed to rate × time + burst, its acks still come, it is never disconnected; another broker's client is not slowed`, async (t) => {
      const rate = 20;
      const ts = await serve(t, { max_client_messages_per_second: rate });
      const a = await connect(t, ts, 'a', version);
      const b = await connect(t, ts, 'b', version);
      let closed = false;
      a.on('close', () => {
        closed = true;
      });
      const window = 1500;
      const [slowed, free] = await Promise.all([publishFor(a, window), publishFor(b, window)]);
      // Beyond rate × time + burst: the message sent at the window's end and acknowledged after
      // it, and the one whose spend went into debt (it was read; the wait comes after it).
      assert.ok(slowed <= (rate * window) / 1000 + rate + 2, `${slowed} acknowledged in ${window} ms`);
      assert.ok(slowed >= rate, `${slowed} acknowledged: the client still gets its rate`);
      assert.ok(free > 2 * slowed, `the other broker's client was not slowed (${free} vs ${slowed})`);
      assert.equal(closed, false);
      assert.equal(a.connected, true);
      assert.ok((await refusals(ts, 'a', 'max_client_messages_per_second')) >= 1);
      assert.equal(await refusals(ts, 'b', 'max_client_messages_per_second'), 0);
    });
  }

  it("v5: limits.max_bytes_per_second bounds the broker's clients together; each is slowed, none disconnected", async (t) => {
    const bytesPerSecond = 20_000;
    const ts = await serve(t, { max_bytes_per_second: bytesPerSecond });
    const payload = Buffer.alloc(1000);
    const one = await connect(t, ts, 'a', 5);
    const two = await connect(t, ts, 'a', 5);
    const window = 1500;
    const counts = await Promise.all([publishFor(one, window, payload), publishFor(two, window, payload)]);
    // rate × time + burst, and per client the two messages of the test above.
    const bound = (bytesPerSecond * window) / 1000 / payload.length + bytesPerSecond / payload.length + 4;
    assert.ok(counts[0]! + counts[1]! <= bound, `${counts} acknowledged in ${window} ms, bound ${bound}`);
    assert.ok(counts[0]! >= 5 && counts[1]! >= 5, `both clients got through: ${counts}`);
    assert.equal(one.connected && two.connected, true);
    assert.ok((await refusals(ts, 'a', 'max_bytes_per_second')) >= 1);
  });
});

describe('inbound rates, rate_limit_action disconnect', () => {
  for (const version of VERSIONS) {
    it(`v${version}: over the client's rate the client is disconnected${version === 5 ? ' with DISCONNECT 0x96 Message rate too high' : ''} (section 4.13)`, async (t) => {
      const ts = await serve(t, { max_client_messages_per_second: 5, rate_limit_action: 'disconnect' });
      const a = await connect(t, ts, 'a', version);
      const reasons: number[] = [];
      a.on('disconnect', (packet) => reasons.push(packet.reasonCode ?? -1));
      for (let i = 0; i < 20; i++) a.publish('rate/t', 'x', { qos: 0 });
      await until(() => !a.connected, 'the server to close the connection');
      assert.deepEqual(reasons, version === 5 ? [ReasonCode.MessageRateTooHigh] : []);
      assert.equal(await refusals(ts, 'a', 'max_client_messages_per_second'), 1);
      // Another broker's client sending as fast is untouched.
      const b = await connect(t, ts, 'b', version);
      for (let i = 0; i < 20; i++) await b.publishAsync('rate/t', 'x', { qos: 1 });
      assert.equal(b.connected, true);
    });
  }

  it('set through the API on a broker with no limits, it applies to the client already connected', async (t) => {
    const ts = await serve(t, {});
    const a = await connect(t, ts, 'a', 5);
    for (let i = 0; i < 20; i++) await a.publishAsync('rate/t', 'x', { qos: 1 });
    const patched = await pubsubApi(ts, 'PATCH', `/namespaces/${NS}/brokers/a`, {
      limits: { max_client_messages_per_second: 5, rate_limit_action: 'disconnect' },
    });
    assert.equal(patched.success, true);
    const reasons: number[] = [];
    a.on('disconnect', (packet) => reasons.push(packet.reasonCode ?? -1));
    for (let i = 0; i < 20; i++) a.publish('rate/t', 'x', { qos: 0 });
    await until(() => !a.connected, 'the server to close the connection');
    assert.deepEqual(reasons, [ReasonCode.MessageRateTooHigh]);
  });
});
