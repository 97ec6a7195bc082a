/**
 * Interop with Eclipse Paho for Python for MQTT 3.1.1 and 5.0, each client one Python process
 * driven through JSON lines (test/helpers/paho.ts).
 * Negative checks publish a marker after the message that must not arrive and assert the marker
 * comes first: one connection's deliveries are ordered.
 */
import assert from 'node:assert/strict';
import { after, before, it, type TestContext } from 'node:test';
import { until } from '../helpers/child-process.ts';
import { describeWithTool, pahoPython, uniqueName } from '../helpers/interop-tools.ts';
import { type ClientConfig, hexOf, type Paho, startPaho, type Version } from '../helpers/paho.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

let ts: TestServer;
before(async () => {
  ts = await startServer();
});
after(() => ts.close());

/** Starts a Paho client (on the suite's server unless `config.port` names another). */
function paho(t: TestContext, version: Version, config: ClientConfig = {}): Promise<Paho> {
  const { port = ts.port, ...rest } = config;
  return startPaho(t, version, port, rest);
}

function session(clientId: string): ReturnType<typeof ts.server.defaultBroker.sessions.get> {
  return ts.server.defaultBroker.sessions.get(clientId);
}

for (const version of [4, 5] as const) {
  const v = `MQTT ${version === 4 ? '3.1.1' : '5.0'}`;

  describeWithTool(`Paho Python, ${v}`, pahoPython, () => {
    it(`${v}: QoS 0, 1 and 2 round trips deliver the payload intact at the granted QoS`, async (t) => {
      const sub = await paho(t, version);
      const pub = await paho(t, version);
      for (const qos of [0, 1, 2] as const) {
        const topic = uniqueName(`paho/v${version}/qos${qos}`);
        assert.deepEqual(await sub.subscribe(topic, qos), [qos]);
        const payload = `héllo "wörld" ✓ qos ${qos}`;
        await pub.publish(topic, payload, qos);
        await sub.message(payload);
        assert.deepEqual(
          sub.messages.filter((m) => m.topic === topic),
          [{ topic, payload, qos, retain: false }],
        );
      }
    });

    it(`${v}: over WebSocket (transport="websockets"), QoS 0/1/2 round trips with a TCP client both ways`, async (t) => {
      const wsPort = Number(new URL(ts.wsUrl).port);
      const overWs = await paho(t, version, { port: wsPort, wsPath: '/mqtt' });
      const overTcp = await paho(t, version);
      for (const qos of [0, 1, 2] as const) {
        const toWs = uniqueName(`paho/ws/v${version}/qos${qos}`);
        const toTcp = uniqueName(`paho/tcp/v${version}/qos${qos}`);
        assert.deepEqual(await overWs.subscribe(toWs, qos), [qos]);
        assert.deepEqual(await overTcp.subscribe(toTcp, qos), [qos]);
        await overTcp.publish(toWs, `tcp→ws ${qos}`, qos);
        await overWs.message(`tcp→ws ${qos}`);
        await overWs.publish(toTcp, `ws→tcp ${qos}`, qos);
        await overTcp.message(`ws→tcp ${qos}`);
        assert.deepEqual(
          overWs.messages.filter((m) => m.topic === toWs).map((m) => m.qos),
          [qos],
        );
      }
    });

    it(`${v}: + matches one level and # matches the parent and every level below`, async (t) => {
      const p = uniqueName(`paho/v${version}/wild`);
      const plus = await paho(t, version);
      await plus.subscribe(`${p}/+/temp`, 1);
      const hash = await paho(t, version);
      await hash.subscribe(`${p}/#`, 1);
      const pub = await paho(t, version);
      const topics = [`${p}/a/temp`, `${p}/a/b/temp`, p, `${p}/temp`, `${p}/end/temp`];
      for (const topic of topics) await pub.publish(topic, topic, 1);
      await plus.message(`${p}/end/temp`, 'the marker via +');
      await hash.message(`${p}/end/temp`, 'the marker via #');
      assert.deepEqual(
        plus.messages.map((m) => m.topic),
        [`${p}/a/temp`, `${p}/end/temp`],
      );
      assert.deepEqual(
        hash.messages.map((m) => m.topic),
        topics,
      ); // [MQTT-4.7.1-2] `#` includes the parent level
    });

    it(`${v}: wildcards at the first level do not match topics starting with $ [MQTT-4.7.2-1]`, async (t) => {
      // A server of its own: a `#` subscriber sees every topic on the server.
      const own = await startServer();
      t.after(() => own.close());
      const port = own.port;
      const all = await paho(t, version, { port });
      await all.subscribe('#', 1);
      const plus = await paho(t, version, { port });
      await plus.subscribe('+/x', 1);
      const dollar = await paho(t, version, { port });
      await dollar.subscribe('$interop/#', 1);
      const pub = await paho(t, version, { port });
      await pub.publish('$interop/x', 'dollar', 1);
      await pub.publish('plain/x', 'plain', 1);
      await dollar.message('dollar', '$interop/x via $interop/#');
      await all.message('plain', 'plain/x via #');
      await plus.message('plain', 'plain/x via +/x');
      assert.deepEqual(
        all.messages.map((m) => m.topic),
        ['plain/x'],
      );
      assert.deepEqual(
        plus.messages.map((m) => m.topic),
        ['plain/x'],
      );
    });

    it(`${v}: a retained message is sent on subscribe with retain set, and an empty one deletes it`, async (t) => {
      const topic = uniqueName(`paho/v${version}/retained`);
      const pub = await paho(t, version);
      await pub.publish(topic, 'kept', 1, true);
      const first = await paho(t, version);
      await first.subscribe(topic, 1);
      await first.message('kept', 'the retained message');
      assert.deepEqual(first.messages, [{ topic, payload: 'kept', qos: 1, retain: true }]); // [MQTT-3.3.1-8]

      await pub.publish(topic, '', 1, true); // [MQTT-3.3.1-10]
      const second = await paho(t, version);
      await second.subscribe(topic, 1);
      await pub.publish(topic, 'marker', 1);
      await second.message('marker');
      assert.deepEqual(second.messages, [{ topic, payload: 'marker', qos: 1, retain: false }]);
    });

    it(`${v}: the will is published when the client is killed`, async (t) => {
      const topic = uniqueName(`paho/v${version}/will`);
      const watcher = await paho(t, version);
      await watcher.subscribe(topic, 1);
      const doomed = await paho(t, version, {
        will: { topic, payload: hexOf('gone'), qos: 1, retain: false },
      });
      await doomed.child.kill();
      await watcher.message('gone', 'the will');
      assert.deepEqual(watcher.messages, [{ topic, payload: 'gone', qos: 1, retain: false }]);
    });

    it(`${v}: the will is discarded after a normal DISCONNECT [MQTT-3.1.2-10]`, async (t) => {
      const topic = uniqueName(`paho/v${version}/no-will`);
      const watcher = await paho(t, version);
      await watcher.subscribe(topic, 1);
      const clientId = uniqueName('paho-will');
      const polite = await paho(t, version, {
        clientId,
        will: { topic, payload: hexOf('gone'), qos: 1, retain: false },
      });
      await polite.disconnect();
      await until(() => session(clientId) === undefined, `the broker to end ${clientId}'s session`);
      await watcher.publish(topic, 'marker', 1);
      await watcher.message('marker');
      assert.deepEqual(
        watcher.messages.map((m) => m.payload),
        ['marker'],
      );
    });

    it(`${v}: a persistent session resumes with the QoS 1 messages queued while offline`, async (t) => {
      const topic = uniqueName(`paho/v${version}/persist`);
      const clientId = uniqueName('paho-persist');
      const persistent: ClientConfig = {
        clientId,
        clean: false,
        ...(version === 5 ? { sessionExpiry: 300 } : {}),
      };
      const first = await paho(t, version, persistent);
      assert.equal(first.connack!.sessionPresent, false);
      await first.subscribe(topic, 1);
      await first.disconnect();
      await until(() => {
        const s = session(clientId);
        return s !== undefined && s.link === undefined;
      }, `${clientId}'s session to outlive its connection`);

      const pub = await paho(t, version);
      for (const n of [1, 2, 3]) await pub.publish(topic, `m${n}`, 1);

      const second = await paho(t, version, persistent);
      assert.equal(second.connack!.sessionPresent, true); // [MQTT-3.2.2-3]
      await second.message('m3', 'the last queued message');
      assert.deepEqual(
        second.messages.map((m) => [m.topic, m.payload, m.qos]),
        [
          [topic, 'm1', 1],
          [topic, 'm2', 1],
          [topic, 'm3', 1],
        ],
      );
    });

    it(`${v}: a second connection with the same client id takes the session over [MQTT-3.1.4-3]`, async (t) => {
      const topic = uniqueName(`paho/v${version}/takeover`);
      const clientId = uniqueName('paho-takeover');
      const first = await paho(t, version, { clientId });
      const second = await paho(t, version, { clientId });
      const dropped = await first.waitFor((e) => e.event === 'disconnect', 'the first connection dropped');
      // v5: DISCONNECT 0x8E Session taken over; 3.1.1 has no such packet, Paho reports the lost connection.
      if (version === 5) assert.equal(dropped.rc, 0x8e);
      else assert.notEqual(dropped.rc, 0);

      await second.subscribe(topic, 1);
      await second.publish(topic, 'still here', 1);
      await second.message('still here');
      assert.deepEqual(
        second.events.filter((e) => e.event === 'disconnect'),
        [],
      );
    });
  });
}
