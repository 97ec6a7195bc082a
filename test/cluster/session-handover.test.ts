/**
 * Persistent sessions follow their client between nodes (issue 19, src/cluster/session-handover.ts):
 * a client that reconnects with Clean Start 0 to the other node of a pair resumes its session
 * there (Session Present 1) with its subscriptions, the messages queued while it was away,
 * unacknowledged QoS 1 messages re-sent with DUP under their packet ids, and its inbound QoS 2
 * ids; a connected client is taken over across nodes (0x8E); a clean start on one node ends the
 * session held on the other [MQTT-3.1.2-4].
 */
import assert from 'node:assert/strict';
import { after, before, it, type TestContext } from 'node:test';
import mqtt from 'mqtt';
import type { PublishPacket } from '../../src/protocol/index.ts';
import { spawnChild, until } from '../helpers/child-process.ts';
import {
  accountOf,
  type Node,
  persistentMosquittoSub,
  startNatsCluster,
  startNode,
} from '../helpers/cluster.ts';
import { describeWithTool, natsServer, uniqueName } from '../helpers/interop-tools.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { type ServerPair, startPair } from '../helpers/server-pair.ts';
import { expectAck } from '../helpers/wire.ts';

const text = (p: PublishPacket): string => p.payload.toString();

/** Three nats-servers clustered and a node on each, named `<prefix>-a`, `-b`, `-c`. */
async function threeNodes(t: TestContext, prefix: string, args: string[]): Promise<Node[]> {
  const { urls } = await startNatsCluster(t, 3);
  return Promise.all(['a', 'b', 'c'].map((n) => startNode(t, { url: urls }, `${prefix}-${n}`, args)));
}

/** Until `node` knows that node `name` wants one filter. */
async function knowsOneFilter(node: Node, name: string): Promise<void> {
  await until(async () => {
    const nodes = (await node.api('/cluster')).body.result.nodes;
    return nodes.find((n) => n.name === name)?.filters === 1;
  }, `the subscription on ${name} known`);
}

/** The sessions a node holds whose client id starts with `prefix` (its admin API's clients list). */
async function clientsOf(node: Node, prefix: string): Promise<{ queued: number }[]> {
  const account = await accountOf(node, 'local');
  const res = await fetch(
    `${node.apiUrl}/client/v4/accounts/${account}/pubsub/namespaces/local/brokers/default/clients?client_id_prefix=${prefix}`,
    { headers: { authorization: `Bearer ${node.token}` } },
  );
  return ((await res.json()) as { result: { queued: number }[] }).result;
}

describeWithTool(
  'cluster: a persistent session moves to the node its client reconnects to',
  natsServer,
  () => {
    let pair: ServerPair;
    before(async () => {
      pair = await startPair();
    });
    after(() => pair?.close());

    const sessions = (ts: { server: ServerPair['a']['server'] }) => ts.server.defaultBroker.sessions;

    it('MQTT.js: subscribed on A, away while B publishes 200 QoS 1 and 100 QoS 2, back on B: all, in order, once', async (t) => {
      const id = uniqueName('move');
      const topic = `${id}/x`;
      const opts = {
        protocolVersion: 5 as const,
        clientId: id,
        clean: false,
        reconnectPeriod: 0,
        properties: { sessionExpiryInterval: 300 },
      };
      const first = await mqtt.connectAsync(pair.a.url, opts);
      await first.subscribeAsync(`${id}/#`, { qos: 2 });
      await first.endAsync();
      await pair.settled();
      const pub = await mqtt.connectAsync(pair.b.url, { protocolVersion: 5, reconnectPeriod: 0 });
      t.after(() => pub.endAsync(true));
      const sent: string[] = [];
      for (let i = 0; i < 300; i++) {
        const payload = `m${i}`;
        sent.push(payload);
        await pub.publishAsync(topic, payload, { qos: i < 200 ? 1 : 2 });
      }
      await until(() => sessions(pair.a).get(id)?.queuedCount === 300, 'the 300 queued on A');

      const got: string[] = [];
      const back = mqtt.connect(pair.b.url, opts);
      t.after(() => back.endAsync(true));
      back.on('message', (_t, payload) => got.push(payload.toString()));
      const connack = await new Promise<mqtt.IConnackPacket>((resolve) => back.once('connect', resolve));
      assert.equal(connack.sessionPresent, true, 'Session Present 1 on B');
      await until(
        () => got.length >= 300,
        () => `all 300 on B (${got.length})`,
      );
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.deepEqual(got, sent, 'in order, none twice');
      assert.equal(sessions(pair.a).has(id), false, 'A holds it no more');
      assert.ok(sessions(pair.b).has(id), 'B holds it');
      assert.equal(pair.a.server.cluster!.sessions.stats.handedOver >= 1, true);
      await back.endAsync(false, { properties: { sessionExpiryInterval: 0 } });
    });

    it('an unacknowledged QoS 1 PUBLISH is re-sent with DUP and its packet id; an inbound QoS 2 id awaiting PUBREL moves too', async () => {
      const id = uniqueName('inflight');
      const topic = `${id}/x`;
      const onA = await RawClient.tcp(pair.a.port, 5);
      const connect = { clientId: id, clean: false, properties: { sessionExpiryInterval: 300 } };
      assert.equal((await onA.connect(connect)).reasonCode, 0);
      onA.send({
        type: 'subscribe',
        packetId: 1,
        subscriptions: [
          { topicFilter: topic, qos: 1, noLocal: true, retainAsPublished: false, retainHandling: 0 },
        ],
      });
      await onA.expect('suback');
      await pair.settled();
      const watcher = await RawClient.tcp(pair.b.port, 5);
      assert.equal((await watcher.connect({ clientId: `${id}-w` })).reasonCode, 0);
      watcher.send({
        type: 'subscribe',
        packetId: 1,
        subscriptions: [
          { topicFilter: `${id}/q2`, qos: 2, noLocal: false, retainAsPublished: false, retainHandling: 0 },
        ],
      });
      await watcher.expect('suback');
      await pair.settled();
      const pub = await RawClient.tcp(pair.b.port, 5);
      assert.equal((await pub.connect({ clientId: `${id}-p` })).reasonCode, 0);
      pub.send({
        type: 'publish',
        topic,
        payload: Buffer.from('unacked'),
        qos: 1,
        retain: false,
        dup: false,
        packetId: 3,
      });
      await pub.expect('puback');
      const p = await onA.expect('publish');
      assert.equal(text(p), 'unacked');
      // A QoS 2 PUBLISH from the session's client: PUBREC, then the client goes before PUBREL.
      onA.send({
        type: 'publish',
        topic: `${id}/q2`,
        payload: Buffer.from('once'),
        qos: 2,
        retain: false,
        dup: false,
        packetId: 7,
      });
      await onA.expect('pubrec');
      const w1 = await watcher.expect('publish');
      assert.equal(text(w1), 'once');
      watcher.send({ type: 'pubrec', packetId: w1.packetId!, reasonCode: 0 });
      await watcher.expect('pubrel');
      watcher.send({ type: 'pubcomp', packetId: w1.packetId!, reasonCode: 0 });
      onA.destroy();
      await until(() => sessions(pair.a).get(id)?.link === undefined, 'A sees the client gone');

      const onB = await RawClient.tcp(pair.b.port, 5);
      assert.equal((await onB.connect(connect)).sessionPresent, true);
      const again = await onB.expect('publish');
      assert.equal(text(again), 'unacked');
      assert.equal(again.dup, true, 'DUP 1 [MQTT-4.4.0-1]');
      assert.equal(again.packetId, p.packetId, 'the same packet id');
      onB.send({ type: 'puback', packetId: again.packetId!, reasonCode: 0 });
      // The QoS 2 PUBLISH sent again (DUP): PUBREC, not delivered a second time [MQTT-4.3.3-9].
      onB.send({
        type: 'publish',
        topic: `${id}/q2`,
        payload: Buffer.from('once'),
        qos: 2,
        retain: false,
        dup: true,
        packetId: 7,
      });
      await onB.expect('pubrec');
      onB.send({ type: 'pubrel', packetId: 7, reasonCode: 0 });
      assert.equal((await expectAck(onB, 'pubcomp')).packetId, 7);
      await watcher.expectSilence(300);
      onB.send({ type: 'disconnect', reasonCode: 0, properties: { sessionExpiryInterval: 0 } });
      for (const c of [watcher, pub]) c.destroy();
    });

    it('a client connected on A that connects on B: A closes its connection with 0x8E, B resumes the session', async () => {
      const id = uniqueName('takeover');
      const connect = { clientId: id, clean: false, properties: { sessionExpiryInterval: 300 } };
      const onA = await RawClient.tcp(pair.a.port, 5);
      assert.equal((await onA.connect(connect)).reasonCode, 0);
      onA.send({
        type: 'subscribe',
        packetId: 1,
        subscriptions: [
          { topicFilter: `${id}/#`, qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 },
        ],
      });
      await onA.expect('suback');
      const onB = await RawClient.tcp(pair.b.port, 5);
      assert.equal((await onB.connect(connect)).sessionPresent, true);
      assert.equal((await onA.expect('disconnect')).reasonCode, 0x8e);
      await pair.settled();
      const pub = await RawClient.tcp(pair.a.port, 5);
      assert.equal((await pub.connect({ clientId: `${id}-p` })).reasonCode, 0);
      pub.send({
        type: 'publish',
        topic: `${id}/t`,
        payload: Buffer.from('to B'),
        qos: 1,
        retain: false,
        dup: false,
        packetId: 1,
      });
      assert.equal(text(await onB.expect('publish')), 'to B', 'the subscription moved with the session');
      onB.send({ type: 'disconnect', reasonCode: 0, properties: { sessionExpiryInterval: 0 } });
      pub.destroy();
    });

    it('a clean start on B ends the session held on A [MQTT-3.1.2-4]', async () => {
      const id = uniqueName('clean');
      const onA = await RawClient.tcp(pair.a.port, 5);
      assert.equal(
        (await onA.connect({ clientId: id, clean: false, properties: { sessionExpiryInterval: 300 } }))
          .reasonCode,
        0,
      );
      onA.send({ type: 'disconnect', reasonCode: 0 });
      await onA.closed();
      assert.ok(sessions(pair.a).has(id));
      const onB = await RawClient.tcp(pair.b.port, 5);
      assert.equal(
        (await onB.connect({ clientId: id, clean: true, properties: { sessionExpiryInterval: 300 } }))
          .sessionPresent,
        false,
      );
      await until(() => !sessions(pair.a).has(id), 'the session on A ended');
      onB.send({ type: 'disconnect', reasonCode: 0, properties: { sessionExpiryInterval: 0 } });
    });
  },
);

describeWithTool(
  'cluster: sessions across three nodes on three NATS servers (mosquitto clients)',
  natsServer,
  () => {
    it('mosquitto_sub -c -i dev1 -q 1 subscribed on A; 1,000 QoS 1 and 500 QoS 2 published on C; back on B: all, in order, once', async (t) => {
      // Room for the 1,500 (the default session queue holds 1,000: docs/limits.md).
      const [a, b, c] = await threeNodes(t, 'sessions', ['--max-queued-messages', '2000']);
      const port = (node: Node): string => new URL(node.urls.mqtt!).port;
      const id = uniqueName('dev1');
      const sub = (node: Node, more: string[]) => persistentMosquittoSub(t, node, id, 1, more);
      const first = sub(a!, ['-E']);
      assert.equal((await first.exited).code, 0, first.report());
      // Every node knows A's filter before C publishes (a subscription reaches the others in ms).
      await knowsOneFilter(c!, 'sessions-a');
      for (const [qos, count, prefix] of [
        [1, 1000, 'q1'],
        [2, 500, 'q2'],
      ] as const) {
        const pub = spawnChild(t, 'sh', [
          '-c',
          `seq -f '${prefix}-%04g' 0 ${count - 1} | mosquitto_pub -h 127.0.0.1 -p ${port(c!)} -q ${qos} -t '${id}/x' -l`,
        ]);
        assert.equal((await pub.exited).code, 0, pub.report());
      }
      const queued = async (): Promise<number> => (await clientsOf(a!, id))[0]?.queued ?? 0;
      let last = -1;
      await until(
        async () => (last = await queued()) === 1500,
        () => `1,500 queued on A (${last})`,
      );

      const back = sub(b!, ['-C', '1500', '-W', '60']);
      assert.equal((await back.exited).code, 0, back.report());
      const expected = [
        ...Array.from({ length: 1000 }, (_, i) => `q1-${String(i).padStart(4, '0')}`),
        ...Array.from({ length: 500 }, (_, i) => `q2-${String(i).padStart(4, '0')}`),
      ];
      assert.deepEqual(back.lines, expected, 'all 1,500, in order, none twice');
      assert.equal(await queued(), 0, 'A holds the session no more');
    });
  },
);

describeWithTool(
  'cluster: a session taken over across nodes under load (three nodes on three NATS servers)',
  natsServer,
  () => {
    it('MQTT.js moving between A and B 100 times while QoS 1 flows from C and QoS 2 from A: nothing missing, no QoS 2 twice, one owner', async (t) => {
      const [a, b, c] = await threeNodes(t, 'takeover', ['--max-client-connect-rate', '0']);
      const id = uniqueName('mover');
      const opts = {
        protocolVersion: 5 as const,
        clientId: id,
        clean: false,
        reconnectPeriod: 0,
        properties: { sessionExpiryInterval: 300 },
      };
      const first = await mqtt.connectAsync(a!.urls.mqtt!, opts);
      await first.subscribeAsync(`${id}/#`, { qos: 2 });
      await first.endAsync();
      await knowsOneFilter(c!, 'takeover-a');

      // What the moving client gets, by payload: PUBLISHes (DUP or not) and whether the
      // broker had released a QoS 2 one (PUBREL) before it came again: exactly once is that
      // nothing comes after its PUBREL [MQTT-4.3.3-2].
      const got = new Map<string, { times: number; released: boolean; again: boolean }>();
      const track = (client: mqtt.MqttClient): mqtt.MqttClient => {
        const byId = new Map<number, string>();
        client.on('packetreceive', (p) => {
          if (p.cmd === 'publish') {
            const payload = p.payload.toString();
            const entry = got.get(payload);
            if (entry === undefined) got.set(payload, { times: 1, released: false, again: false });
            else {
              entry.times++;
              if (entry.released || !p.dup) entry.again = true;
            }
            if (p.qos === 2) byId.set(p.messageId!, payload);
          } else if (p.cmd === 'pubrel') {
            const entry = got.get(byId.get(p.messageId!) ?? '');
            if (entry !== undefined) entry.released = true;
          }
        });
        return client;
      };
      const flowing = (node: Node, qos: 1 | 2, prefix: string, perSecond: number) => {
        let sent = 0;
        let stop = false;
        const done = (async () => {
          const pub = await mqtt.connectAsync(node.urls.mqtt!, { protocolVersion: 5, reconnectPeriod: 0 });
          let last = performance.now();
          while (!stop) {
            await new Promise((resolve) => setTimeout(resolve, 5));
            const now = performance.now();
            const n = Math.max(1, Math.round(((now - last) * perSecond) / 1000));
            last = now;
            const batch: Promise<unknown>[] = [];
            for (let i = 0; i < n; i++)
              batch.push(pub.publishAsync(`${id}/${prefix}`, `${prefix}-${sent++}`, { qos }));
            await Promise.all(batch); // acknowledged: each must arrive
          }
          await pub.endAsync();
        })();
        const halt = () => {
          stop = true;
          return done;
        };
        return { sent: () => sent, stop: halt };
      };
      const q1 = flowing(c!, 1, 'q1', 1000);
      const q2 = flowing(a!, 2, 'q2', 300);
      const held = async (node: Node): Promise<number> => (await clientsOf(node, id)).length;
      const nodes = [b!, a!];
      for (let i = 0; i < 100; i++) {
        const client = track(mqtt.connect(nodes[i % 2]!.urls.mqtt!, opts));
        const connack = await new Promise<mqtt.IConnackPacket>((resolve) => client.once('connect', resolve));
        assert.equal(connack.sessionPresent, true, `move ${i}: Session Present 1`);
        assert.equal(
          await held(nodes[(i + 1) % 2]!),
          0,
          `move ${i}: the node left holds the session no more`,
        );
        await new Promise((resolve) => setTimeout(resolve, 30));
        await client.endAsync();
      }
      const sent = { q1: 0, q2: 0 };
      await q1.stop();
      await q2.stop();
      sent.q1 = q1.sent();
      sent.q2 = q2.sent();
      const last = track(mqtt.connect(a!.urls.mqtt!, opts));
      t.after(() => last.endAsync(true));
      const missing = (prefix: string, count: number): number => {
        let n = 0;
        for (let i = 0; i < count; i++) if (!got.has(`${prefix}-${i}`)) n++;
        return n;
      };
      await until(
        () => missing('q1', sent.q1) + missing('q2', sent.q2) === 0,
        () =>
          `every message arrives (missing ${missing('q1', sent.q1)} QoS 1, ${missing('q2', sent.q2)} QoS 2)`,
        20_000,
      );
      const twice = [...got].filter(([p, e]) => p.startsWith('q2-') && e.again).map(([p]) => p);
      assert.deepEqual(twice, [], 'no QoS 2 message delivered again after its PUBREL, or twice without DUP');
      assert.ok(sent.q1 > 1000 && sent.q2 > 300, `messages flowed during the moves (${sent.q1}, ${sent.q2})`);
      assert.deepEqual(
        [await held(a!), await held(b!), await held(c!)],
        [1, 0, 0],
        'one node holds the session',
      );
      await last.endAsync(false, { properties: { sessionExpiryInterval: 0 } });
    });
  },
);
