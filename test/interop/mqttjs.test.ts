/**
 * Interop with MQTT.js (v5 of the library) over TCP, for MQTT 3.1.1 and 5.0: QoS round trips,
 * wildcards, retained messages, wills, persistent sessions and takeover, each exercised the way
 * an application would, through the library's own API.
 *
 * Every client disables automatic reconnection, so a test sees exactly the connections it makes.
 * Negative checks ("X is not delivered") never sleep: they publish a marker after X and assert
 * that the marker arrives with nothing before it, since one connection's deliveries are ordered.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import { until, WAIT_MS } from '../helpers/child-process.ts';
import { uniqueName } from '../helpers/interop-tools.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

let ts: TestServer;
before(async () => {
  ts = await startServer();
});
after(() => ts.close());

type Version = 4 | 5;

interface Received {
  topic: string;
  payload: Buffer;
  qos: number;
  retain: boolean;
}

/** Every message a client receives, in order, with a wait on them. */
class Inbox {
  readonly messages: Received[] = [];
  #waiters: { predicate: (m: Received) => boolean; resolve: (m: Received) => void }[] = [];

  constructor(client: MqttClient) {
    client.on('message', (topic: string, payload: Buffer, packet: IPublishPacket) => {
      const m = { topic, payload, qos: packet.qos, retain: packet.retain };
      this.messages.push(m);
      for (const w of [...this.#waiters]) {
        if (w.predicate(m)) {
          this.#waiters.splice(this.#waiters.indexOf(w), 1);
          w.resolve(m);
        }
      }
    });
  }

  /** The first message (received or to come) satisfying `predicate`. */
  waitFor(predicate: (m: Received) => boolean, what: string): Promise<Received> {
    const found = this.messages.find(predicate);
    if (found !== undefined) return Promise.resolve(found);
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([
      new Promise<Received>((resolve) => this.#waiters.push({ predicate, resolve })),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          const got = this.messages.map((m) => `${m.topic}=${m.payload}`).join(', ');
          reject(new Error(`timed out waiting for ${what}; received: [${got}]`));
        }, WAIT_MS);
      }),
    ]).finally(() => clearTimeout(timer));
  }

  on(topic: string): Received[] {
    return this.messages.filter((m) => m.topic === topic);
  }
}

function options(version: Version, extra: IClientOptions = {}): IClientOptions {
  return { protocolVersion: version, reconnectPeriod: 0, connectTimeout: WAIT_MS, ...extra };
}

/** Connects with MQTT.js; the test's after hook force-closes the client. */
async function connect(
  t: TestContext,
  version: Version,
  extra: IClientOptions = {},
): Promise<{ client: MqttClient; inbox: Inbox }> {
  const client = await mqtt.connectAsync(ts.url, options(version, extra));
  t.after(() => client.endAsync(true));
  return { client, inbox: new Inbox(client) };
}

/**
 * Connects with handlers attached before CONNACK arrives, for resumed sessions whose queued
 * messages may follow the CONNACK in the same read. Resolves with the CONNACK's session present.
 */
async function connectEarly(
  t: TestContext,
  version: Version,
  extra: IClientOptions,
): Promise<{ client: MqttClient; inbox: Inbox; sessionPresent: boolean }> {
  const client = mqtt.connect(ts.url, options(version, extra));
  t.after(() => client.endAsync(true));
  const inbox = new Inbox(client);
  const sessionPresent = await new Promise<boolean>((resolve, reject) => {
    client.once('connect', (connack) => resolve(connack.sessionPresent));
    client.once('error', reject);
  });
  return { client, inbox, sessionPresent };
}

/** Resolves when the broker no longer serves `clientId` on any connection. */
function disconnected(clientId: string): Promise<void> {
  return until(
    () => ts.server.defaultBroker.sessions.get(clientId)?.link === undefined,
    `the broker to release ${clientId}`,
  );
}

for (const version of [4, 5] as const) {
  const v = `MQTT ${version === 4 ? '3.1.1' : '5.0'}`;

  describe(`MQTT.js, ${v}`, () => {
    for (const qos of [0, 1, 2] as const) {
      it(`${v}: QoS ${qos} round trip delivers the payload intact at the granted QoS`, async (t) => {
        const topic = uniqueName(`mqttjs/v${version}/qos${qos}`);
        const { client: sub, inbox } = await connect(t, version);
        const granted = await sub.subscribeAsync(topic, { qos });
        assert.deepEqual(
          granted.map((g) => g.qos),
          [qos],
        );
        const { client: pub } = await connect(t, version);
        const payload = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
        await pub.publishAsync(topic, payload, { qos });
        const got = await inbox.waitFor((m) => m.topic === topic, `QoS ${qos} message`);
        assert.deepEqual(got.payload, payload);
        assert.equal(got.qos, qos);
        assert.equal(got.retain, false);
      });
    }

    it(`${v}: delivery QoS is the lower of the publish QoS and the granted QoS`, async (t) => {
      const topic = uniqueName(`mqttjs/v${version}/downgrade`);
      const { client: sub, inbox } = await connect(t, version);
      await sub.subscribeAsync(topic, { qos: 1 });
      const { client: pub } = await connect(t, version);
      await pub.publishAsync(topic, 'two', { qos: 2 });
      await pub.publishAsync(topic, 'zero', { qos: 0 });
      await inbox.waitFor((m) => m.payload.toString() === 'zero', 'the QoS 0 message');
      assert.deepEqual(
        inbox.on(topic).map((m) => [m.payload.toString(), m.qos]),
        [
          ['two', 1],
          ['zero', 0],
        ],
      );
    });

    it(`${v}: + matches one level and # matches the parent and every level below`, async (t) => {
      const p = uniqueName(`mqttjs/v${version}/wild`);
      const plus = await connect(t, version);
      await plus.client.subscribeAsync(`${p}/+/temp`, { qos: 1 });
      const hash = await connect(t, version);
      await hash.client.subscribeAsync(`${p}/#`, { qos: 1 });
      const { client: pub } = await connect(t, version);
      const topics = [`${p}/a/temp`, `${p}/a/b/temp`, p, `${p}/temp`, `${p}/end/temp`];
      for (const topic of topics) await pub.publishAsync(topic, topic, { qos: 1 });
      await plus.inbox.waitFor((m) => m.topic === `${p}/end/temp`, 'the marker via +');
      await hash.inbox.waitFor((m) => m.topic === `${p}/end/temp`, 'the marker via #');
      assert.deepEqual(
        plus.inbox.messages.map((m) => m.topic),
        [`${p}/a/temp`, `${p}/end/temp`],
      );
      assert.deepEqual(
        hash.inbox.messages.map((m) => m.topic),
        topics,
      ); // [MQTT-4.7.1-2] `#` includes the parent level
    });

    it(`${v}: wildcards at the first level do not match topics starting with $ [MQTT-4.7.2-1]`, async (t) => {
      // A server of its own: a `#` subscriber sees every topic on the server.
      const own = await startServer();
      t.after(() => own.close());
      const open = async (): Promise<{ client: MqttClient; inbox: Inbox }> => {
        const client = await mqtt.connectAsync(own.url, options(version));
        t.after(() => client.endAsync(true));
        return { client, inbox: new Inbox(client) };
      };
      const all = await open();
      await all.client.subscribeAsync('#', { qos: 1 });
      const plus = await open();
      await plus.client.subscribeAsync('+/x', { qos: 1 });
      const dollar = await open();
      await dollar.client.subscribeAsync('$interop/#', { qos: 1 });
      const { client: pub } = await open();
      await pub.publishAsync('$interop/x', 'sys', { qos: 1 });
      await pub.publishAsync('plain/x', 'plain', { qos: 1 });
      await dollar.inbox.waitFor((m) => m.topic === '$interop/x', '$interop/x via $interop/#');
      await all.inbox.waitFor((m) => m.topic === 'plain/x', 'plain/x via #');
      await plus.inbox.waitFor((m) => m.topic === 'plain/x', 'plain/x via +/x');
      assert.deepEqual(
        all.inbox.messages.map((m) => m.topic),
        ['plain/x'],
      );
      assert.deepEqual(
        plus.inbox.messages.map((m) => m.topic),
        ['plain/x'],
      );
    });

    it(`${v}: a retained message is sent on subscribe with retain set, and an empty one deletes it`, async (t) => {
      const topic = uniqueName(`mqttjs/v${version}/retained`);
      const { client: pub } = await connect(t, version);
      await pub.publishAsync(topic, 'kept', { qos: 1, retain: true });

      const first = await connect(t, version);
      await first.client.subscribeAsync(topic, { qos: 1 });
      const got = await first.inbox.waitFor((m) => m.topic === topic, 'the retained message');
      assert.equal(got.payload.toString(), 'kept');
      assert.equal(got.retain, true); // [MQTT-3.3.1-8]
      assert.equal(got.qos, 1);

      // A retained publish reaching an existing subscriber is a live delivery: retain 0 [MQTT-3.3.1-9].
      await pub.publishAsync(topic, 'kept again', { qos: 1, retain: true });
      const live = await first.inbox.waitFor((m) => m.payload.toString() === 'kept again', 'live retained');
      assert.equal(live.retain, false);
      await first.client.endAsync();

      await pub.publishAsync(topic, '', { qos: 1, retain: true }); // [MQTT-3.3.1-10]
      const second = await connect(t, version);
      await second.client.subscribeAsync(topic, { qos: 1 });
      await pub.publishAsync(topic, 'marker', { qos: 1 });
      await second.inbox.waitFor((m) => m.payload.toString() === 'marker', 'the marker');
      assert.deepEqual(
        second.inbox.messages.map((m) => [m.payload.toString(), m.retain]),
        [['marker', false]],
      );
    });

    it(`${v}: the will is published when the connection drops without DISCONNECT`, async (t) => {
      const topic = uniqueName(`mqttjs/v${version}/will`);
      const { client: watcher, inbox } = await connect(t, version);
      await watcher.subscribeAsync(topic, { qos: 1 });
      const { client } = await connect(t, version, {
        will: { topic, payload: Buffer.from('gone'), qos: 1, retain: false },
      });
      client.stream.destroy();
      const will = await inbox.waitFor((m) => m.topic === topic, 'the will');
      assert.equal(will.payload.toString(), 'gone');
      assert.equal(will.qos, 1);
    });

    it(`${v}: the will is discarded after a normal DISCONNECT [MQTT-3.1.2-10]`, async (t) => {
      const topic = uniqueName(`mqttjs/v${version}/no-will`);
      const { client: watcher, inbox } = await connect(t, version);
      await watcher.subscribeAsync(topic, { qos: 1 });
      const clientId = uniqueName('mqttjs-will');
      const { client } = await connect(t, version, {
        clientId,
        will: { topic, payload: Buffer.from('gone'), qos: 1, retain: false },
      });
      await client.endAsync();
      await disconnected(clientId);
      await watcher.publishAsync(topic, 'marker', { qos: 1 });
      await inbox.waitFor((m) => m.payload.toString() === 'marker', 'the marker');
      assert.deepEqual(
        inbox.messages.map((m) => m.payload.toString()),
        ['marker'],
      );
    });

    it(`${v}: a persistent session resumes with the QoS 1 messages queued while offline`, async (t) => {
      const topic = uniqueName(`mqttjs/v${version}/persist`);
      const clientId = uniqueName('mqttjs-persist');
      const persistent: IClientOptions =
        version === 5
          ? { clientId, clean: false, properties: { sessionExpiryInterval: 300 } }
          : { clientId, clean: false };
      const first = await connectEarly(t, version, persistent);
      assert.equal(first.sessionPresent, false);
      await first.client.subscribeAsync(topic, { qos: 1 });
      await first.client.endAsync();
      await disconnected(clientId);

      const { client: pub } = await connect(t, version);
      for (const n of [1, 2, 3]) await pub.publishAsync(topic, `m${n}`, { qos: 1 });

      const second = await connectEarly(t, version, persistent);
      assert.equal(second.sessionPresent, true); // [MQTT-3.2.2-3]
      await second.inbox.waitFor((m) => m.payload.toString() === 'm3', 'the last queued message');
      assert.deepEqual(
        second.inbox.messages.map((m) => [m.topic, m.payload.toString(), m.qos]),
        [
          [topic, 'm1', 1],
          [topic, 'm2', 1],
          [topic, 'm3', 1],
        ],
      );
    });

    it(`${v}: a second connection with the same client id takes the session over [MQTT-3.1.4-3]`, async (t) => {
      const topic = uniqueName(`mqttjs/v${version}/takeover`);
      const clientId = uniqueName('mqttjs-takeover');
      const { client: first } = await connect(t, version, { clientId });
      const firstDisconnect = new Promise<number | undefined>((resolve) =>
        first.once('disconnect', (packet) => resolve(packet.reasonCode)),
      );
      const firstClosed = new Promise<void>((resolve) => first.once('close', () => resolve()));

      const second = await connect(t, version, { clientId });
      await firstClosed;
      if (version === 5) assert.equal(await firstDisconnect, 0x8e); // Session taken over

      await second.client.subscribeAsync(topic, { qos: 1 });
      await second.client.publishAsync(topic, 'still here', { qos: 1 });
      const got = await second.inbox.waitFor((m) => m.topic === topic, 'a message on the new connection');
      assert.equal(got.payload.toString(), 'still here');
      assert.equal(second.client.connected, true);
    });
  });
}

describe('MQTT.js, the seed example', () => {
  it('mqtt.connect(url, { protocolVersion: 5, clientId: "" }) receives its own message', async (t) => {
    const url = ts.url;
    const topic = uniqueName('seed/hello');
    const client = mqtt.connect(url, { protocolVersion: 5, clientId: '' });
    t.after(() => client.endAsync(true));
    const received = new Promise<string>((resolve, reject) => {
      client.on('error', reject);
      client.on('connect', () => {
        client.subscribe(topic, (err) => {
          if (err) return reject(err);
          client.publish(topic, 'Hello, world!');
        });
      });
      client.on('message', (_topic, message) => resolve(message.toString()));
    });
    assert.equal(await received, 'Hello, world!');
    await client.endAsync();
  });
});
