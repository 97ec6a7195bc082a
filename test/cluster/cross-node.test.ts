/**
 * Two `pubsub serve --cluster` nodes on one nats-server (issue 18), driven by real clients:
 * a message published on node A reaches the matching subscriptions on node B with the
 * single-node semantics (QoS, properties, retain-as-published, No Local, subscription
 * identifiers, order), every legal topic crosses (escaped subjects), only wanted messages
 * leave their node (the NATS server's own counters say so), and GET /cluster and
 * `pubsub cluster status` list both nodes.
 *
 * A subscription made on B takes effect on A once A has heard of it (a few milliseconds): each
 * test first sends probes (payload `probe`) until one arrives, and ignores them afterwards.
 */
import assert from 'node:assert/strict';
import { after, before, it, type TestContext } from 'node:test';
import { connect as natsConnect } from '@nats-io/transport-node';
import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import { until } from '../helpers/child-process.ts';
import {
  type ClusterView,
  type Nats,
  type Node,
  startNats,
  startNode,
  suiteContext,
} from '../helpers/cluster.ts';
import {
  describeWithTool,
  mosquittoClients,
  mosquittoPub,
  mosquittoSub,
  natsServer,
  uniqueName,
} from '../helpers/interop-tools.ts';
import { runCli } from '../helpers/pubsub-process.ts';

interface Received {
  topic: string;
  payload: string;
  packet: IPublishPacket;
}

/** A client and what it received, probes left out. */
interface Client {
  client: MqttClient;
  received: Received[];
  /** The probes it received (payload `probe`), apart. */
  probes: Received[];
  waitFor(count: number, what: string): Promise<void>;
}

/** The reason codes of the PUBACKs and PUBRECs a client receives, in order. */
function ackReasons(client: MqttClient): number[] {
  const reasons: number[] = [];
  client.on('packetreceive', (packet) => {
    if (packet.cmd === 'puback' || packet.cmd === 'pubrec') reasons.push(packet.reasonCode ?? 0);
  });
  return reasons;
}

/** The suite's own context: what it starts is stopped when the suite ends. */
const { suite, cleanup } = suiteContext();

let nats: Nats;
let a: Node;
let b: Node;

describeWithTool('cluster: messages cross nodes', natsServer, () => {
  before(async () => {
    nats = await startNats(suite);
    [a, b] = await Promise.all([startNode(suite, nats, 'node-a'), startNode(suite, nats, 'node-b')]);
  });
  after(cleanup);

  async function client(t: TestContext, node: Node, options: IClientOptions = {}): Promise<Client> {
    const c = await mqtt.connectAsync(node.urls.mqtt!, {
      protocolVersion: 5,
      reconnectPeriod: 0,
      clientId: uniqueName('c'),
      ...options,
    });
    t.after(() => c.endAsync(true));
    const received: Received[] = [];
    const probes: Received[] = [];
    c.on('message', (topic, payload, packet) => {
      const m = { topic, payload: payload.toString(), packet };
      (m.payload === 'probe' ? probes : received).push(m);
    });
    return {
      client: c,
      received,
      probes,
      waitFor: (count, what) => until(() => received.length >= count, what),
    };
  }

  /** Publishes probes on `from` to `topic` until `to` got one: `to`'s filter is known on `from`'s node. */
  async function probe(from: MqttClient, to: Client, topic: string): Promise<void> {
    const probes = to.probes;
    const seen = probes.length;
    await until(async () => {
      if (probes.length > seen) return true;
      await from.publishAsync(topic, 'probe', { qos: 0 });
      await new Promise((resolve) => setTimeout(resolve, 20));
      return probes.length > seen;
    }, `a probe on ${topic} across nodes`);
  }

  it('MQTT.js v5: properties, subscription identifiers, retain as published and QoS min cross nodes', async (t) => {
    const topic = `${uniqueName('props')}/x`;
    const rap = await client(t, b);
    const plain = await client(t, b);
    await rap.client.subscribeAsync(topic, { qos: 1, rap: true, properties: { subscriptionIdentifier: 7 } });
    await plain.client.subscribeAsync(topic, { qos: 2 });
    const pub = await client(t, a);
    await probe(pub.client, rap, topic);
    await probe(pub.client, plain, topic);
    const properties = {
      userProperties: { k: ['v1', 'v2'], other: 'x' },
      correlationData: Buffer.from([1, 2, 3]),
      contentType: 'application/json',
      payloadFormatIndicator: true,
      responseTopic: 'reply/to',
      messageExpiryInterval: 60,
    };
    const reasons = ackReasons(pub.client);
    await pub.client.publishAsync(topic, '{"n":1}', { qos: 2, retain: true, properties });
    assert.deepEqual(reasons, [0], 'a remote subscriber counts: no 0x10');
    await rap.waitFor(1, 'the message on B (retain as published)');
    await plain.waitFor(1, 'the message on B (plain)');
    const got = rap.received[0]!.packet;
    assert.equal(got.qos, 1, 'QoS is the minimum of publish and subscription');
    assert.equal(got.retain, true, 'retain as published [MQTT-3.3.1-12]');
    assert.deepEqual(got.properties?.subscriptionIdentifier, 7);
    assert.deepEqual({ ...got.properties?.userProperties }, properties.userProperties);
    assert.deepEqual(got.properties?.correlationData, properties.correlationData);
    assert.equal(got.properties?.contentType, 'application/json');
    assert.equal(got.properties?.payloadFormatIndicator, true);
    assert.equal(got.properties?.responseTopic, 'reply/to');
    const left = got.properties?.messageExpiryInterval ?? 0;
    assert.ok(left > 55 && left <= 60, `expiry left ${left}`);
    const other = plain.received[0]!.packet;
    assert.equal(other.qos, 2);
    assert.equal(other.retain, false, 'live delivery without retain as published [MQTT-3.3.1-13]');
    assert.equal(other.properties?.subscriptionIdentifier, undefined);
  });

  it('a v5 publisher whose message nobody anywhere wants is told 0x10 (no matching subscribers)', async (t) => {
    const pub = await client(t, a);
    const reasons = ackReasons(pub.client);
    await pub.client.publishAsync(`${uniqueName('nobody')}/x`, 'x', { qos: 1 });
    assert.deepEqual(reasons, [0x10]);
  });

  it('No Local is decided on the publisher node: its own subscription is skipped, B still gets it [MQTT-3.8.3-3]', async (t) => {
    const topic = `${uniqueName('nolocal')}/x`;
    const self = await client(t, a);
    await self.client.subscribeAsync(`${topic.split('/')[0]}/#`, { qos: 1, nl: true });
    const remote = await client(t, b);
    await remote.client.subscribeAsync(topic, { qos: 1 });
    const other = await client(t, a);
    await probe(other.client, remote, topic);
    await self.client.publishAsync(topic, 'own', { qos: 1 });
    await other.client.publishAsync(topic, 'marker', { qos: 1 });
    await remote.waitFor(2, 'own and marker on B');
    await self.waitFor(1, 'the marker');
    assert.deepEqual(
      self.received.map((m) => m.payload),
      ['marker'],
    );
    assert.deepEqual(
      remote.received.map((m) => m.payload),
      ['own', 'marker'],
    );
  });

  it('wildcards and escaped topics: every legal topic reaches exactly the filters that match it', async (t) => {
    const root = uniqueName('esc');
    const topics = [
      `${root}/a.b`,
      `${root}/*`,
      `${root}/>`,
      `${root}/sp ace`,
      `${root}//empty`,
      `${root}/ü日本`,
      `${root}/~2E`,
      `$${root}/x`,
    ];
    const filters: Record<string, string[]> = {
      [`${root}/*`]: [`${root}/*`],
      [`${root}/+`]: [
        `${root}/a.b`,
        `${root}/*`,
        `${root}/>`,
        `${root}/sp ace`,
        `${root}/ü日本`,
        `${root}/~2E`,
      ],
      [`${root}/+/empty`]: [`${root}//empty`],
      [`$${root}/#`]: [`$${root}/x`],
      [`${root}/#`]: topics.filter((x) => !x.startsWith('$')),
      [`+/${'*'}`]: [`${root}/*`],
    };
    const subs = new Map<string, Client>();
    for (const filter of Object.keys(filters)) {
      const c = await client(t, b, { protocolVersion: 4 });
      await c.client.subscribeAsync(filter, { qos: 1 });
      subs.set(filter, c);
    }
    const pub = await client(t, a);
    for (const [filter, c] of subs) await probe(pub.client, c, filters[filter]![0]!);
    for (const topic of topics) await pub.client.publishAsync(topic, `to ${topic}`, { qos: 1 });
    for (const [filter, c] of subs) {
      await c.waitFor(filters[filter]!.length, `${filters[filter]!.length} messages on ${filter}`);
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(
        c.received.map((m) => m.topic).sort(),
        [...filters[filter]!].sort(),
        `filter ${filter}`,
      );
    }
  });

  it('QoS 0/1/2 in v3.1.1 and v5: each level crosses, in order per publisher and topic', async (t) => {
    for (const version of [4, 5] as const) {
      for (const qos of [0, 1, 2] as const) {
        const topic = `${uniqueName('order')}/x`;
        const sub = await client(t, b, { protocolVersion: version });
        await sub.client.subscribeAsync(topic, { qos: 2 });
        const pub = await client(t, a, { protocolVersion: version });
        await probe(pub.client, sub, topic);
        const sends: Promise<unknown>[] = [];
        for (let i = 0; i < 200; i++) sends.push(pub.client.publishAsync(topic, `${i}`, { qos }));
        await Promise.all(sends);
        await sub.waitFor(200, `200 messages at QoS ${qos} (v${version})`);
        assert.deepEqual(
          sub.received.map((m) => Number(m.payload)),
          Array.from({ length: 200 }, (_, i) => i),
        );
        assert.ok(sub.received.every((m) => m.packet.qos === qos));
      }
    }
  });

  it('a message nobody on another node wants never leaves its node (nats-server counters)', async (t) => {
    const root = uniqueName('interest');
    const sub = await client(t, b);
    await sub.client.subscribeAsync(`${root}/wanted/#`, { qos: 0 });
    const pub = await client(t, a);
    await probe(pub.client, sub, `${root}/wanted/x`);
    // A spy on the bus sees every data subject there is.
    const spy = await natsConnect({ servers: nats.url });
    t.after(() => spy.close());
    const subjects: string[] = [];
    spy.subscribe('pubsub.m.>', {
      callback: (_err, msg) => {
        subjects.push(msg.subject);
      },
    });
    await spy.flush();
    const before = await nats.varz();
    for (let i = 0; i < 500; i++) pub.client.publish(`${root}/unwanted/${i % 5}`, 'x', { qos: 0 });
    await pub.client.publishAsync(`${root}/wanted/end`, 'end', { qos: 1 });
    await sub.waitFor(1, 'the wanted message');
    await until(() => subjects.length > 0, 'the spy to see the wanted batch');
    const afterwards = await nats.varz();
    assert.deepEqual(
      subjects.filter((s) => s.includes('unwanted')),
      [],
      'no unwanted message on the bus',
    );
    // 500 unwanted messages published, and NATS received a few messages only: the wanted one
    // and the nodes' announcements.
    assert.ok(
      afterwards.in_msgs - before.in_msgs < 20,
      `in_msgs grew by ${afterwards.in_msgs - before.in_msgs}`,
    );
  });

  it('messages cross in batches: many MQTT messages per NATS message', async (t) => {
    const topic = `${uniqueName('batch')}/x`;
    const sub = await client(t, b);
    await sub.client.subscribeAsync(topic, { qos: 0 });
    const pub = await client(t, a);
    await probe(pub.client, sub, topic);
    const metric = async (name: string): Promise<number> => {
      const text = await (await fetch(`${a.apiUrl}/metrics`)).text();
      return Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+)`, 'm').exec(text)?.[1] ?? Number.NaN);
    };
    const [sent0, batches0] = [
      await metric('pubsub_cluster_messages_sent_total'),
      await metric('pubsub_cluster_batches_sent_total'),
    ];
    for (let i = 0; i < 2000; i++) pub.client.publish(topic, `${i}`, { qos: 0 });
    await sub.waitFor(2000, '2000 messages on B');
    const sent = (await metric('pubsub_cluster_messages_sent_total')) - sent0;
    const batches = (await metric('pubsub_cluster_batches_sent_total')) - batches0;
    assert.equal(sent, 2000);
    assert.ok(batches < sent / 4, `${sent} messages in ${batches} batches`);
  });

  describeWithTool('with mosquitto clients', mosquittoClients, () => {
    it('mosquitto_sub on B gets what mosquitto_pub sends on A: QoS 0/1/2, v3.1.1 and v5, QoS min', async (t) => {
      for (const version of ['mqttv311', 'mqttv5']) {
        const topic = `${uniqueName('mosq')}/x`;
        const at = (node: Node): string[] => [
          '-h',
          '127.0.0.1',
          '-p',
          String(node.port('mqtt')),
          '-V',
          version,
        ];
        const sub = await mosquittoSub(t, [...at(b), '-q', '1', '-t', topic, '-v']);
        const prober = await client(t, a);
        await until(async () => {
          await prober.client.publishAsync(topic, 'probe');
          await new Promise((resolve) => setTimeout(resolve, 20));
          return sub.lines.some((l) => l === `${topic} probe`);
        }, 'a probe through mosquitto_sub');
        for (const qos of [0, 1, 2]) {
          const pub = await mosquittoPub(t, [...at(a), '-q', String(qos), '-t', topic, '-m', `m${qos}`]);
          assert.equal(pub.exit?.code, 0, pub.report());
        }
        await sub.waitForLine((l) => l === `${topic} m2`, 'm2 on B');
        const received = sub.lines.filter((l) => /received PUBLISH/.test(l) && !l.includes('(5 bytes)'));
        // m0 at QoS 0; m1 and m2 at QoS 1, the subscription's maximum.
        assert.deepEqual(
          received.slice(-3).map((l) => /\(d\d, q(\d)/.exec(l)![1]), // not the client id's: auto-…q8…
          ['0', '1', '1'],
          sub.report(),
        );
      }
    });
  });

  it('a client id is connected once per broker: connecting on B takes over from A (v5 0x8E, v3.1.1 closed) [MQTT-3.1.4-3]', async (t) => {
    for (const version of [5, 4] as const) {
      const clientId = uniqueName('same');
      const first = await mqtt.connectAsync(a.urls.mqtt!, {
        protocolVersion: version,
        reconnectPeriod: 0,
        clientId,
      });
      t.after(() => first.endAsync(true));
      let reason: number | undefined;
      let closed = false;
      first.on('disconnect', (packet) => {
        reason = packet.reasonCode;
      });
      first.on('close', () => {
        closed = true;
      });
      const second = await client(t, b, { protocolVersion: version, clientId });
      await until(() => closed, `the v${version} connection on A closed`);
      if (version === 5) assert.equal(reason, 0x8e);
      assert.equal(second.client.connected, true, 'the new connection on B stays');
      const topic = `${clientId}/after`;
      await second.client.subscribeAsync(topic, { qos: 1 });
      await second.client.publishAsync(topic, 'still here', { qos: 1 });
      await second.waitFor(1, 'the new connection served');
    }
  });

  it('GET /cluster and pubsub cluster status list both nodes with their link, uptime and connections', async (t) => {
    await client(t, b);
    await until(async () => {
      const { body } = await a.api('/cluster');
      const peer = body.result.nodes.find((n) => n.name === 'node-b');
      return (peer?.connections ?? 0) >= 1;
    }, "node-b's announcement with its connection");
    const { status, body } = await a.api('/cluster');
    assert.equal(status, 200);
    assert.equal(body.result.enabled, true);
    const [self, peer] = body.result.nodes as [ClusterView['nodes'][0], ClusterView['nodes'][0]];
    assert.equal(self.name, 'node-a');
    assert.equal(self.self, true);
    assert.equal(self.link, 'up');
    assert.equal(peer.name, 'node-b');
    assert.equal(peer.apiUrl, b.apiUrl);
    assert.ok((peer.uptimeSeconds ?? -1) >= 0);
    const cli = await runCli(['cluster', 'status', '--data-dir', a.dataDir]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, /node-a \(this node\)\s+up/);
    assert.match(cli.stdout, /node-b\s+up/);
    const json = await runCli(['cluster', 'status', '--json', '--data-dir', a.dataDir]);
    assert.deepEqual(
      JSON.parse(json.stdout).nodes.map((n: { name: string }) => n.name),
      ['node-a', 'node-b'],
    );
  });
});
