/**
 * Real clients across two nodes (issue 18), beyond cross-node.test.ts (MQTT.js and mosquitto,
 * QoS, wildcards, escaped topics, nats-server's counters): Eclipse Paho (Python) publishing on
 * node A and subscribing on node B, QoS 0/1/2 in MQTT 3.1.1 and 5.0 through a wildcard and a
 * plain filter, and mosquitto_pub on A to Paho on B; then NATS killed and restarted while
 * messages flow: the publisher's node keeps delivering every message locally, in order; the
 * remote subscriber gets the messages before and after, in order and none twice, and every
 * message it misses that the node knew it could not send is counted as dropped.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { until } from '../helpers/child-process.ts';
import { type Node, startNats, startNode } from '../helpers/cluster.ts';
import {
  describeWithTool,
  mosquittoClients,
  mosquittoPub,
  natsServer,
  pahoPython,
  uniqueName,
} from '../helpers/interop-tools.ts';
import { type Paho, startPaho } from '../helpers/paho.ts';

async function metric(node: Node, name: string): Promise<number> {
  const text = await (await fetch(`${node.apiUrl}/metrics`)).text();
  return Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+)`, 'm').exec(text)?.[1] ?? Number.NaN);
}

/** The messages `sub` received on `topic`, probes left out: payload and QoS. */
const got = (sub: Paho, topic: string): [string, number][] =>
  sub.messages.filter((m) => m.topic === topic && m.payload !== 'probe').map((m) => [m.payload, m.qos]);

/** Publishes probes through `publish` until `sub` got one on `topic`: its filter is known on A. */
async function probe(publish: () => Promise<unknown>, sub: Paho, topic: string): Promise<void> {
  await until(async () => {
    await publish();
    await new Promise((resolve) => setTimeout(resolve, 20));
    return sub.messages.some((m) => m.topic === topic && m.payload === 'probe');
  }, `a probe on ${topic} across nodes`);
}

describeWithTool('cluster: real clients across nodes', natsServer, () => {
  describeWithTool('with Paho (Python)', pahoPython, () => {
    it('Paho on A to Paho on B: QoS 0/1/2, v3.1.1 and v5, a wildcard at QoS 1 and a plain filter at QoS 2', async (t) => {
      const nats = await startNats(t);
      const [a, b] = await Promise.all([startNode(t, nats, 'paho-a'), startNode(t, nats, 'paho-b')]);
      for (const version of [4, 5] as const) {
        const root = uniqueName(`paho${version}`);
        const wildTopic = `${root}/x/w`;
        const plain = `${root}/p`;
        const sub = await startPaho(t, version, b.port('mqtt'));
        assert.deepEqual(await sub.subscribe(`${root}/+/w`, 1), [1]);
        assert.deepEqual(await sub.subscribe(plain, 2), [2]);
        const pub = await startPaho(t, version, a.port('mqtt'));
        await probe(() => pub.publish(wildTopic, 'probe', 0), sub, wildTopic);
        await probe(() => pub.publish(plain, 'probe', 0), sub, plain);
        for (const qos of [0, 1, 2] as const) {
          await pub.publish(wildTopic, `w${qos}`, qos);
          await pub.publish(plain, `p${qos}`, qos);
        }
        await sub.message('p2', `p2 on B (v${version})`);
        await sub.message('w2', `w2 on B (v${version})`);
        assert.deepEqual(
          got(sub, wildTopic),
          [
            ['w0', 0],
            ['w1', 1],
            ['w2', 1],
          ],
          'through the wildcard: QoS min(publish, subscription 1)',
        );
        assert.deepEqual(got(sub, plain), [
          ['p0', 0],
          ['p1', 1],
          ['p2', 2],
        ]);
      }
    });

    describeWithTool('and mosquitto_pub', mosquittoClients, () => {
      it('mosquitto_pub on A to Paho on B: QoS 0/1/2, v3.1.1 and v5', async (t) => {
        const nats = await startNats(t);
        const [a, b] = await Promise.all([startNode(t, nats, 'mix-a'), startNode(t, nats, 'mix-b')]);
        for (const [version, flag] of [
          [4, 'mqttv311'],
          [5, 'mqttv5'],
        ] as const) {
          const topic = `${uniqueName('mix')}/x`;
          const sub = await startPaho(t, version, b.port('mqtt'));
          assert.deepEqual(await sub.subscribe(topic, 2), [2]);
          const send = (qos: number, message: string) =>
            mosquittoPub(t, [
              '-h',
              '127.0.0.1',
              '-p',
              String(a.port('mqtt')),
              '-V',
              flag,
              '-q',
              String(qos),
              '-t',
              topic,
              '-m',
              message,
            ]);
          await probe(() => send(0, 'probe'), sub, topic);
          for (const qos of [0, 1, 2]) {
            const pub = await send(qos, `m${qos}`);
            assert.equal(pub.exit?.code, 0, pub.report());
          }
          await sub.message('m2', `m2 on B (v${version})`);
          assert.deepEqual(got(sub, topic), [
            ['m0', 0],
            ['m1', 1],
            ['m2', 2],
          ]);
        }
      });
    });
  });

  it('NATS restarted while messages flow: local delivery unaffected, cross-node resumes in order, drops counted', async (t) => {
    const nats = await startNats(t);
    const [a, b] = await Promise.all([startNode(t, nats, 'flow-a'), startNode(t, nats, 'flow-b')]);
    const topic = `${uniqueName('flow')}/x`;
    const connect = async (node: Node): Promise<{ client: MqttClient; got: number[] }> => {
      const client = await mqtt.connectAsync(node.urls.mqtt!, { protocolVersion: 5, reconnectPeriod: 0 });
      t.after(() => client.endAsync(true));
      const got: number[] = [];
      client.on('message', (_topic, payload) => got.push(Number(payload.toString())));
      await client.subscribeAsync(topic, { qos: 0 });
      return { client, got };
    };
    const remote = await connect(b);
    const local = await connect(a);
    const pub = await mqtt.connectAsync(a.urls.mqtt!, { protocolVersion: 5, reconnectPeriod: 0 });
    t.after(() => pub.endAsync(true));

    // One message every 2 ms, numbered from 0, until stopped.
    let sent = 0;
    let flowing = true;
    const flow = (async () => {
      while (flowing) {
        pub.publish(topic, String(sent++), { qos: 0 });
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    })();
    const dropped0 = await metric(a, 'pubsub_cluster_messages_dropped_total');
    await until(() => remote.got.length >= 50, 'messages crossing before the fault');

    await nats.kill();
    await until(async () => (await a.api('/readyz')).status === 503, "A's /readyz 503");
    const downAt = sent;
    await until(() => sent > downAt + 100, 'messages published while NATS is down');
    await nats.start();
    for (const node of [a, b])
      await until(
        async () => (await node.api('/readyz')).status === 200,
        `${node.dataDir} /readyz 200 again`,
      );
    const upAt = sent;
    await until(() => remote.got.some((n) => n > upAt + 50), 'messages crossing again after the restart');
    flowing = false;
    await flow;
    await until(() => local.got.length === sent, `all ${sent} messages on A`);

    assert.deepEqual(
      local.got,
      Array.from({ length: sent }, (_, i) => i),
      'local delivery is every message, in order, through the fault',
    );
    const dropped = (await metric(a, 'pubsub_cluster_messages_dropped_total')) - dropped0;
    const missing = sent - remote.got.length;
    assert.ok(
      remote.got.every((n, i) => i === 0 || n > remote.got[i - 1]!),
      'across nodes: in order, none twice',
    );
    assert.ok(
      dropped >= 100,
      `at least the messages published while A's link was down are counted: ${dropped}`,
    );
    assert.ok(
      missing >= dropped,
      `every counted drop is a message B did not get (missing ${missing}, dropped ${dropped})`,
    );
  });
});
