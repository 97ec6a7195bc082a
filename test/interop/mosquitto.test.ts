/**
 * Interop with Debian's mosquitto_pub and mosquitto_sub (libmosquitto), for MQTT 3.1.1 and 5.0.
 *
 * Subscribers run with `-d` so their debug output says when the SUBACK arrived (the only
 * reliable readiness signal), under `stdbuf -oL` because stdout to a pipe is otherwise
 * block-buffered, and with `-F 'msg %q %r %t %x'` so each message is one line carrying QoS,
 * retain flag, topic and the payload in hex. Every child is SIGKILLed by the test's after hook.
 * Negative checks publish a marker after the message that must not arrive and assert the marker
 * comes first: one connection's deliveries are ordered.
 */
import assert from 'node:assert/strict';
import { after, before, it, type TestContext } from 'node:test';
import type { Connection } from '../../src/session/connection.ts';
import { type Child, until } from '../helpers/child-process.ts';
import {
  describeWithTool,
  mosquittoClients,
  mosquittoPub,
  mosquittoSub,
  uniqueName,
} from '../helpers/interop-tools.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

let ts: TestServer;
before(async () => {
  ts = await startServer();
});
after(() => ts.close());

type Version = 4 | 5;
const VERSION_FLAG = { 4: 'mqttv311', 5: 'mqttv5' } as const;

interface Received {
  qos: number;
  retain: boolean;
  topic: string;
  payload: string;
}

/** The messages a `mosquitto_sub` started by `subscribe` has printed so far. */
function received(sub: Child): Received[] {
  return sub.lines
    .filter((line) => line.startsWith('msg '))
    .map((line) => {
      const [, qos, retain, topic, hex] = line.split(' ');
      return {
        qos: Number(qos),
        retain: retain === '1',
        topic: topic!,
        payload: Buffer.from(hex ?? '', 'hex').toString(),
      };
    });
}

const hexOf = (text: string): string => Buffer.from(text).toString('hex');

/** Waits until `sub` has printed a message with this payload. */
function message(sub: Child, payload: string, what = `message ${JSON.stringify(payload)}`): Promise<string> {
  return sub.waitForLine((line) => line.startsWith('msg ') && line.endsWith(` ${hexOf(payload)}`), what);
}

interface SubscribeOptions {
  port?: number;
  /** Wait for the SUBACK before resolving (default true). */
  ready?: boolean;
}

/** The broker on this port at this protocol version, as mosquitto_pub/sub flags. */
const target = (version: Version, port: number): string[] => [
  ...['-h', '127.0.0.1', '-p', String(port)],
  ...['-V', VERSION_FLAG[version]],
];

/** Starts `mosquitto_sub` with `args` and, by default, waits until its subscriptions are acknowledged. */
async function subscribe(
  t: TestContext,
  version: Version,
  args: string[],
  { port = ts.port, ready = true }: SubscribeOptions = {},
): Promise<Child> {
  const formatted = ['-F', 'msg %q %r %t %x', '-W', '30'];
  return mosquittoSub(t, [...target(version, port), ...formatted, ...args], { ready });
}

/** Runs `mosquitto_pub` with `args` to completion (it exits once its QoS flow is complete). */
async function publish(t: TestContext, version: Version, args: string[], port = ts.port): Promise<void> {
  const pub = await mosquittoPub(t, [...target(version, port), ...args]);
  assert.equal(pub.exit!.code, 0, `mosquitto_pub failed\n${pub.report()}`);
}

function session(clientId: string): ReturnType<typeof ts.server.defaultBroker.sessions.get> {
  return ts.server.defaultBroker.sessions.get(clientId);
}

for (const version of [4, 5] as const) {
  const v = `MQTT ${version === 4 ? '3.1.1' : '5.0'}`;

  describeWithTool(`mosquitto_pub/mosquitto_sub, ${v}`, mosquittoClients, () => {
    for (const qos of [0, 1, 2] as const) {
      it(`${v}: QoS ${qos} round trip delivers the payload intact at the granted QoS`, async (t) => {
        const topic = uniqueName(`mosquitto/v${version}/qos${qos}`);
        const sub = await subscribe(t, version, ['-q', String(qos), '-t', topic, '-C', '1']);
        const payload = `héllo "wörld" ✓ qos ${qos}`;
        await publish(t, version, ['-q', String(qos), '-t', topic, '-m', payload]);
        await message(sub, payload);
        assert.deepEqual(received(sub), [{ qos, retain: false, topic, payload }]);
        assert.equal((await sub.waitForExit()).code, 0);
      });
    }

    it(`${v}: + matches one level and # matches the parent and every level below`, async (t) => {
      const p = uniqueName(`mosquitto/v${version}/wild`);
      const plus = await subscribe(t, version, ['-q', '1', '-t', `${p}/+/temp`]);
      const hash = await subscribe(t, version, ['-q', '1', '-t', `${p}/#`]);
      const topics = [`${p}/a/temp`, `${p}/a/b/temp`, p, `${p}/temp`, `${p}/end/temp`];
      for (const topic of topics) await publish(t, version, ['-q', '1', '-t', topic, '-m', topic]);
      await message(plus, `${p}/end/temp`, 'the marker via +');
      await message(hash, `${p}/end/temp`, 'the marker via #');
      assert.deepEqual(
        received(plus).map((m) => m.topic),
        [`${p}/a/temp`, `${p}/end/temp`],
      );
      assert.deepEqual(
        received(hash).map((m) => m.topic),
        topics,
      ); // [MQTT-4.7.1-2] `#` includes the parent level
    });

    it(`${v}: wildcards at the first level do not match topics starting with $ [MQTT-4.7.2-1]`, async (t) => {
      // A server of its own: a `#` subscriber sees every topic on the server.
      const own = await startServer();
      t.after(() => own.close());
      const port = own.port;
      const all = await subscribe(t, version, ['-q', '1', '-t', '#'], { port });
      const plus = await subscribe(t, version, ['-q', '1', '-t', '+/x'], { port });
      const dollar = await subscribe(t, version, ['-q', '1', '-t', '$interop/#'], { port });
      await publish(t, version, ['-q', '1', '-t', '$interop/x', '-m', 'dollar'], port);
      await publish(t, version, ['-q', '1', '-t', 'plain/x', '-m', 'plain'], port);
      await message(dollar, 'dollar', '$interop/x via $interop/#');
      await message(all, 'plain', 'plain/x via #');
      await message(plus, 'plain', 'plain/x via +/x');
      assert.deepEqual(
        received(all).map((m) => m.topic),
        ['plain/x'],
      );
      assert.deepEqual(
        received(plus).map((m) => m.topic),
        ['plain/x'],
      );
    });

    it(`${v}: a retained message is sent on subscribe with retain set, and an empty one deletes it`, async (t) => {
      const topic = uniqueName(`mosquitto/v${version}/retained`);
      await publish(t, version, ['-q', '1', '-r', '-t', topic, '-m', 'kept']);
      const first = await subscribe(t, version, ['-q', '1', '-t', topic, '-C', '1']);
      await message(first, 'kept', 'the retained message');
      assert.deepEqual(received(first), [{ qos: 1, retain: true, topic, payload: 'kept' }]); // [MQTT-3.3.1-8]

      await publish(t, version, ['-q', '1', '-r', '-t', topic, '-n']); // [MQTT-3.3.1-10]
      const second = await subscribe(t, version, ['-q', '1', '-t', topic]);
      await publish(t, version, ['-q', '1', '-t', topic, '-m', 'marker']);
      await message(second, 'marker');
      assert.deepEqual(received(second), [{ qos: 1, retain: false, topic, payload: 'marker' }]);
    });

    it(`${v}: the will is published when the client is killed`, async (t) => {
      const topic = uniqueName(`mosquitto/v${version}/will`);
      const watcher = await subscribe(t, version, ['-q', '1', '-t', topic]);
      const doomed = await subscribe(t, version, [
        '-t',
        `${topic}/unused`,
        '--will-topic',
        topic,
        '--will-payload',
        'gone',
        '--will-qos',
        '1',
      ]);
      await doomed.kill();
      await message(watcher, 'gone', 'the will');
      assert.deepEqual(received(watcher), [{ qos: 1, retain: false, topic, payload: 'gone' }]);
    });

    it(`${v}: the will is discarded after a normal DISCONNECT [MQTT-3.1.2-10]`, async (t) => {
      const topic = uniqueName(`mosquitto/v${version}/no-will`);
      const watcher = await subscribe(t, version, ['-q', '1', '-t', topic]);
      const clientId = uniqueName('mosquitto-will');
      // -E: disconnect normally once the subscription is acknowledged.
      const polite = await subscribe(
        t,
        version,
        ['-E', '-i', clientId, '-t', `${topic}/unused`, '--will-topic', topic, '--will-payload', 'gone'],
        { ready: false },
      );
      assert.equal((await polite.waitForExit()).code, 0, polite.report());
      await until(() => session(clientId) === undefined, `the broker to end ${clientId}'s session`);
      await publish(t, version, ['-q', '1', '-t', topic, '-m', 'marker']);
      await message(watcher, 'marker');
      assert.deepEqual(
        received(watcher).map((m) => m.payload),
        ['marker'],
      );
    });

    it(`${v}: a persistent session (-c) resumes with the QoS 1 messages queued while offline`, async (t) => {
      const topic = uniqueName(`mosquitto/v${version}/persist`);
      const clientId = uniqueName('mosquitto-persist');
      const persistent = [
        '-c',
        '-i',
        clientId,
        '-q',
        '1',
        '-t',
        topic,
        ...(version === 5 ? ['-x', '300'] : []),
      ];
      const first = await subscribe(t, version, [...persistent, '-E'], { ready: false });
      assert.equal((await first.waitForExit()).code, 0, first.report());
      await until(() => {
        const s = session(clientId);
        return s !== undefined && s.link === undefined;
      }, `${clientId}'s session to outlive its connection`);

      for (const n of [1, 2, 3]) await publish(t, version, ['-q', '1', '-t', topic, '-m', `m${n}`]);

      const second = await subscribe(t, version, [...persistent, '-C', '3'], { ready: false });
      assert.equal((await second.waitForExit()).code, 0, second.report());
      assert.deepEqual(
        received(second).map((m) => [m.topic, m.payload, m.qos]),
        [
          [topic, 'm1', 1],
          [topic, 'm2', 1],
          [topic, 'm3', 1],
        ],
      );
    });

    it(`${v}: a second connection with the same client id takes the session over [MQTT-3.1.4-3]`, async (t) => {
      const topic = uniqueName(`mosquitto/v${version}/takeover`);
      const clientId = uniqueName('mosquitto-takeover');
      const first = await subscribe(t, version, ['-i', clientId, '-q', '1', '-t', topic]);
      const firstConnection = session(clientId)!.link as Connection;
      const firstClosed = new Promise<void>((resolve) => firstConnection.socket.once('close', resolve));
      if (version === 4) {
        // A 3.1.1 client cannot be told why it was dropped, and mosquitto_sub reconnects a
        // second later, which would take the session back: stop it as soon as it is dropped.
        firstClosed.then(() => first.process.kill('SIGKILL'));
      }

      const second = await subscribe(t, version, ['-i', clientId, '-q', '1', '-t', topic]);
      await firstClosed;
      if (version === 5) {
        await first.waitForLine((line) => line.includes('DISCONNECT (142)'), 'DISCONNECT 0x8E');
        assert.equal((await first.waitForExit()).code, 0, first.report()); // it does not reconnect
      }
      assert.notEqual(session(clientId)?.link, undefined);
      assert.notEqual(session(clientId)?.link, firstConnection);

      await publish(t, version, ['-q', '1', '-t', topic, '-m', 'still here']);
      await message(second, 'still here');
      assert.equal(received(second).length, 1);
    });
  });
}
