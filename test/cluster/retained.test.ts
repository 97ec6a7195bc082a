/**
 * Retained messages cluster-wide (issue 18): set on one node, a new subscriber on any other
 * gets it (retain handling and retain-as-published as on one node); an empty retained payload
 * clears it everywhere; a node that joins later has them all before it is ready; concurrent
 * writes to one topic end the same on every node; the retained limits count cluster-wide; a
 * node whose link was down catches up; message expiry holds across nodes.
 *
 * Nodes learn of a write through the NATS stream, a few milliseconds after the publisher's
 * acknowledgement: tests wait (until()) for the admin API of the reading node to list it, then
 * assert what a real client gets there.
 */
import assert from 'node:assert/strict';
import { createServer, type Socket, connect as tcpConnect } from 'node:net';
import { join } from 'node:path';
import { after, before, it, type TestContext } from 'node:test';
import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import { until } from '../helpers/child-process.ts';
import {
  accountOf,
  metric,
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
import { tempDir } from '../helpers/pubsub-process.ts';

interface Retained {
  topic: string;
  payload: string;
  properties: { message_expiry_interval?: number };
}

/** The retained messages `node`'s admin API lists for `filter`, payloads decoded. */
async function retainedOn(node: Node, filter: string): Promise<Retained[]> {
  const path = `/client/v4/accounts/${await accountOf(node, 'local')}/pubsub/namespaces/local/brokers/default/retained`;
  const res = await fetch(`${node.apiUrl}${path}?filter=${encodeURIComponent(filter)}&payload=true`, {
    headers: { authorization: `Bearer ${node.token}` },
  });
  assert.equal(res.status, 200);
  const body = (await res.json()) as { result: (Retained & { payload: string })[] };
  return body.result.map((m) => ({ ...m, payload: Buffer.from(m.payload, 'base64').toString() }));
}

/** Waits until `node` holds `payload` (undefined: nothing) as the retained message of `topic`. */
async function holds(node: Node, topic: string, payload: string | undefined): Promise<void> {
  await until(
    async () => (await retainedOn(node, topic))[0]?.payload === payload,
    `${topic} = ${payload ?? 'nothing'} on ${node.apiUrl}`,
  );
}

async function client(t: TestContext, node: Node, options: IClientOptions = {}): Promise<MqttClient> {
  const c = await mqtt.connectAsync(node.urls.mqtt!, {
    protocolVersion: 5,
    reconnectPeriod: 0,
    clientId: uniqueName('r'),
    ...options,
  });
  t.after(() => c.endAsync(true));
  return c;
}

/**
 * Subscribes `c` to `filter` with `options` and returns what it got once `sentinel` (a retained
 * message under the filter, sent in the same SUBSCRIBE's replay) has arrived: whatever else the
 * replay held came with it.
 */
async function replay(
  c: MqttClient,
  filter: string,
  options: mqtt.IClientSubscribeOptions,
  sentinel: string,
): Promise<IPublishPacket[]> {
  const got: IPublishPacket[] = [];
  const listener = (_topic: string, _payload: Buffer, packet: IPublishPacket) => got.push(packet);
  c.on('message', listener);
  await c.subscribeAsync(filter, options);
  await until(() => got.some((p) => p.payload.toString() === sentinel), `the sentinel on ${filter}`);
  c.off('message', listener);
  return got;
}

/** The suite's own context: what it starts is stopped when the suite ends. */
const { suite, cleanup } = suiteContext();

let nats: Nats;
let a: Node;
let b: Node;

describeWithTool('cluster: retained messages', natsServer, () => {
  before(async () => {
    nats = await startNats(suite);
    // Topics up to the protocol's 65,535 bytes, past what fits a NATS subject; packets past
    // NATS's 1 MiB max_payload.
    const args = ['--max-topic-length', '65535', '--max-packet-size', '2000000'];
    [a, b] = await Promise.all([
      startNode(suite, nats, 'ret-a', args),
      startNode(suite, nats, 'ret-b', args),
    ]);
  });
  after(cleanup);

  describeWithTool('with mosquitto clients', mosquittoClients, () => {
    it('set on A (mosquitto_pub -r) a new mosquitto_sub on B gets it with the retain flag; an empty one on B clears it on A [MQTT-3.3.1-5] [MQTT-3.3.1-6]: v3.1.1 and v5', async (t) => {
      for (const version of ['mqttv311', 'mqttv5']) {
        const base = uniqueName('mosq');
        const topic = `${base}/x`;
        const at = (node: Node): string[] => [
          '-h',
          '127.0.0.1',
          '-p',
          String(node.port('mqtt')),
          '-V',
          version,
        ];
        const pub = await mosquittoPub(t, [...at(a), '-q', '1', '-r', '-t', topic, '-m', 'kept']);
        assert.equal(pub.exit?.code, 0, pub.report());
        await holds(b, topic, 'kept');
        const sub = await mosquittoSub(t, [...at(b), '-t', topic, '-v', '-C', '1']);
        await sub.waitForLine((l) => l === `${topic} kept`, 'the retained message on B');
        assert.ok(
          sub.lines.some((l) => /received PUBLISH \(d0, q0, r1, m\d+, '.*', \.\.\. \(4 bytes\)\)/.test(l)),
          sub.report(),
        );
        const clear = await mosquittoPub(t, [...at(b), '-q', '1', '-r', '-n', '-t', topic]);
        assert.equal(clear.exit?.code, 0, clear.report());
        await holds(a, topic, undefined);
        // A new subscriber on A gets the sentinel only: the cleared topic's message is gone.
        const sentinel = await mosquittoPub(t, [
          ...at(b),
          '-q',
          '1',
          '-r',
          '-t',
          `${base}/s`,
          '-m',
          'sentinel',
        ]);
        assert.equal(sentinel.exit?.code, 0, sentinel.report());
        await holds(a, `${base}/s`, 'sentinel');
        const after = await mosquittoSub(t, [...at(a), '-t', `${base}/#`, '-v']);
        await after.waitForLine((l) => l === `${base}/s sentinel`, 'the sentinel on A');
        assert.ok(!after.lines.some((l) => l.startsWith(`${topic} `)), after.report());
      }
    });
  });

  it('retain handling 0/1/2 and retain-as-published on B for messages set on A [MQTT-3.3.1-9] [MQTT-3.3.1-10] [MQTT-3.3.1-11] [MQTT-3.3.1-12] [MQTT-3.3.1-13]', async (t) => {
    const base = uniqueName('rh');
    const pub = await client(t, a);
    await pub.publishAsync(`${base}/t`, 'value', { qos: 1, retain: true });
    await pub.publishAsync(`${base}/s`, 'sentinel', { qos: 1, retain: true });
    await holds(b, `${base}/s`, 'sentinel');
    await holds(b, `${base}/t`, 'value');
    const sub = await client(t, b);
    const rh0 = await replay(sub, `${base}/#`, { qos: 1, rh: 0 }, 'sentinel');
    assert.deepEqual(rh0.map((p) => [p.topic, p.payload.toString(), p.retain]).sort(), [
      [`${base}/s`, 'sentinel', true],
      [`${base}/t`, 'value', true],
    ]);
    // rh 1 sends them for a new subscription only [MQTT-3.3.1-10].
    const rh1 = await replay(sub, `${base}/+`, { qos: 1, rh: 1 }, 'sentinel');
    assert.equal(rh1.length, 2);
    const again: IPublishPacket[] = [];
    sub.on('message', (_t, _p, packet) => again.push(packet));
    await sub.subscribeAsync(`${base}/+`, { qos: 1, rh: 1 });
    // rh 2 never sends them [MQTT-3.3.1-11]; the live message that follows proves the replay is over.
    const other = await client(t, b);
    const rh2: IPublishPacket[] = [];
    other.on('message', (_t, _p, packet) => rh2.push(packet));
    await other.subscribeAsync(`${base}/#`, { qos: 1, rh: 2, rap: true });
    // Live messages until both got one (B's new interest reaches A within milliseconds).
    await until(async () => {
      await pub.publishAsync(`${base}/live`, 'probe', { qos: 1, retain: true });
      await new Promise((resolve) => setTimeout(resolve, 20));
      return rh2.length > 0 && again.length > 0;
    }, 'a live message on both clients of B');
    assert.deepEqual(
      new Set(rh2.map((p) => `${p.topic} ${p.payload} ${p.retain}`)),
      new Set([`${base}/live probe true`]),
      'rh 2: no retained replay; rap: the live retain flag kept [MQTT-3.3.1-13]',
    );
    assert.deepEqual(
      new Set(again.map((p) => `${p.topic} ${p.retain}`)),
      new Set([`${base}/live false`]),
      'rh 1 on an existing subscription: no replay; without rap the retain flag is 0 [MQTT-3.3.1-12]',
    );
  });

  it('every legal topic is kept apart: `.`, `*`, `>`, spaces, empty levels, UTF-8, and topics too long for a NATS subject (hashed)', async (t) => {
    const base = uniqueName('odd');
    const topics = [
      `${base}/a.b/*/>/with space//ü€`,
      `${base}/a/b`,
      `${base}/a.b`,
      `${base}/${'x'.repeat(3000)}`,
      `${base}/${'é'.repeat(1500)}`,
      `${base}/${'é'.repeat(1500)}/`,
    ];
    const pub = await client(t, a);
    for (const [i, topic] of topics.entries())
      await pub.publishAsync(topic, `v${i}`, { qos: 1, retain: true });
    await pub.publishAsync(`${base}/s`, 'sentinel', { qos: 1, retain: true });
    await holds(b, `${base}/s`, 'sentinel');
    for (const [i, topic] of topics.entries()) await holds(b, topic, `v${i}`);
    const got = await replay(await client(t, b), `${base}/#`, { qos: 1 }, 'sentinel');
    assert.deepEqual(
      got.map((p) => `${p.topic} ${p.payload}`).sort(),
      [...topics.map((topic, i) => `${topic} v${i}`), `${base}/s sentinel`].sort(),
    );
  });

  it('a retained message over NATS max_payload stays on its node (counted, logged), and later writes to its topic cross', async (t) => {
    const topic = `${uniqueName('big')}/x`;
    const pub = await client(t, a);
    const failed = await metric(a, 'pubsub_cluster_retained_failed_total');
    await pub.publishAsync(topic, Buffer.alloc(1_500_000, 1), { qos: 1, retain: true });
    await until(
      async () => (await metric(a, 'pubsub_cluster_retained_failed_total')) === failed + 1,
      'the refusal counted',
    );
    assert.equal(await metric(a, 'pubsub_cluster_retained_pending'), 0, 'not retried');
    assert.equal((await retainedOn(a, topic)).length, 1, 'kept on A');
    assert.deepEqual(await retainedOn(b, topic), []);
    await pub.publishAsync(topic, 'small', { qos: 1, retain: true });
    await holds(b, topic, 'small');
  });

  it('an admin API delete on A clears the retained message on B', async (t) => {
    const topic = `${uniqueName('api')}/x`;
    const pub = await client(t, b);
    await pub.publishAsync(topic, 'doomed', { qos: 1, retain: true });
    await holds(a, topic, 'doomed');
    const path = `/client/v4/accounts/${await accountOf(a, 'local')}/pubsub/namespaces/local/brokers/default/retained`;
    const res = await fetch(`${a.apiUrl}${path}?topic=${encodeURIComponent(topic)}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${a.token}` },
    });
    assert.equal(res.status, 200);
    await holds(b, topic, undefined);
  });

  it("a broker deleted through A's API takes its retained messages out of the stream: made again, a node that joins later has none of the old ones", async (t) => {
    const headers = { authorization: `Bearer ${a.token}`, 'content-type': 'application/json' };
    const namespaces = `/client/v4/accounts/${a.accountId}/pubsub/namespaces`;
    const ns = uniqueName('rp').toLowerCase();
    const call = async (node: Node, method: string, path: string, body?: unknown) =>
      fetch(`${node.apiUrl}${namespaces}${path}`, {
        method,
        headers,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    const listed = async (node: Node) => {
      const res = await call(node, 'GET', `/${ns}/brokers/gone/retained?filter=%23&payload=true`);
      if (res.status !== 200) return undefined;
      return ((await res.json()) as { result: Retained[] }).result.map((m) => m.topic).sort();
    };
    const makeBroker = async () => {
      assert.equal(
        (await call(a, 'POST', `/${ns}/brokers`, { name: 'gone', auth_type: 'NONE' })).status,
        200,
      );
      await until(async () => (await listed(b)) !== undefined, 'the broker on B');
    };
    assert.equal((await call(a, 'POST', '', { name: ns })).status, 200);
    await makeBroker();
    const old = await client(t, b, { username: `gone.${ns}` });
    await old.publishAsync('t/old', 'old', { qos: 1, retain: true });
    await until(async () => (await listed(a))?.includes('t/old') === true, 't/old on A');
    assert.equal((await call(a, 'DELETE', `/${ns}/brokers/gone`)).status, 200);
    await makeBroker();
    const fresh = await client(t, b, { username: `gone.${ns}` });
    await fresh.publishAsync('t/new', 'new', { qos: 1, retain: true });
    const late = await startNode(t, nats, uniqueName('ret-late'));
    await until(async () => (await listed(late))?.includes('t/new') === true, 't/new on the late node');
    assert.deepEqual(await listed(late), ['t/new']);
  });

  it('a node that joins later has every retained message (clears applied) once ready, v3.1.1 and v5', async (t) => {
    const base = uniqueName('late');
    const pa = await client(t, a);
    const pb = await client(t, b, { protocolVersion: 4 });
    await pa.publishAsync(`${base}/1`, 'one', { qos: 1, retain: true });
    await pb.publishAsync(`${base}/2`, 'two', { qos: 1, retain: true });
    await pa.publishAsync(`${base}/3`, 'three', { qos: 1, retain: true });
    await pb.publishAsync(`${base}/3`, '', { qos: 1, retain: true });
    await holds(a, `${base}/3`, undefined);
    await holds(b, `${base}/1`, 'one');
    const c = await startNode(t, nats, 'ret-late');
    // Ready means loaded: no waiting here.
    assert.deepEqual((await retainedOn(c, `${base}/#`)).map((m) => [m.topic, m.payload]).sort(), [
      [`${base}/1`, 'one'],
      [`${base}/2`, 'two'],
    ]);
    for (const protocolVersion of [4, 5] as const) {
      const sub = await client(t, c, { protocolVersion });
      const got = await replay(sub, `${base}/#`, { qos: 0 }, 'two');
      assert.deepEqual(got.map((p) => [p.topic, p.payload.toString(), p.retain]).sort(), [
        [`${base}/1`, 'one', true],
        [`${base}/2`, 'two', true],
      ]);
    }
  });

  it('concurrent writes to one topic from A and B: every node ends with the same message, the last in the stream', async (t) => {
    const topic = `${uniqueName('race')}/x`;
    const c = await startNode(t, nats, 'ret-race');
    const [pa, pb, pc] = await Promise.all([client(t, a), client(t, b), client(t, c)]);
    for (let round = 0; round < 40; round++) {
      await Promise.all([
        pa.publishAsync(topic, `a${round}`, { qos: 1, retain: true }),
        pb.publishAsync(topic, `b${round}`, { qos: 1, retain: true }),
        pc.publishAsync(topic, `c${round}`, { qos: 1, retain: true }),
      ]);
    }
    // The last round's writes, or (crossing on the way to the stream) the one before.
    const last = ['a39', 'b39', 'c39', 'a38', 'b38', 'c38'];
    let values: (string | undefined)[] = [];
    await until(async () => {
      values = await Promise.all([a, b, c].map(async (n) => (await retainedOn(n, topic))[0]?.payload));
      return values.every((v) => v === values[0]) && last.includes(values[0]!);
    }, 'one value on every node');
    assert.ok(last.includes(values[0]!), `${values}`);
  });

  it('message expiry holds across nodes: the interval left on B, then gone [MQTT-3.3.2-5] [MQTT-3.3.2-6]', async (t) => {
    const base = uniqueName('exp');
    const pub = await client(t, a);
    await pub.publishAsync(`${base}/x`, 'brief', {
      qos: 1,
      retain: true,
      properties: { messageExpiryInterval: 2 },
    });
    await pub.publishAsync(`${base}/s`, 'sentinel', { qos: 1, retain: true });
    await holds(b, `${base}/s`, 'sentinel');
    const first = await replay(await client(t, b), `${base}/#`, { qos: 1 }, 'sentinel');
    const brief = first.find((p) => p.topic === `${base}/x`);
    assert.ok(brief !== undefined, 'the message before it expires');
    assert.ok((brief.properties?.messageExpiryInterval ?? 99) <= 2, 'the interval left, not more');
    await until(async () => (await retainedOn(b, `${base}/x`)).length === 0, 'expired on B');
    const later = await replay(await client(t, b), `${base}/#`, { qos: 1 }, 'sentinel');
    assert.deepEqual(
      later.map((p) => p.topic),
      [`${base}/s`],
    );
  });
});

describeWithTool('cluster: retained limits count cluster-wide', natsServer, () => {
  it('max_retained_messages 2: two set on A and B, a third on A is refused as on one node (delivered, not retained, counted)', async (t) => {
    const n = await startNats(t);
    const args = ['--max-retained-messages', '2'];
    const [la, lb] = await Promise.all([startNode(t, n, 'lim-a', args), startNode(t, n, 'lim-b', args)]);
    const base = uniqueName('lim');
    const pa = await client(t, la);
    const pb = await client(t, lb);
    await pa.publishAsync(`${base}/1`, 'one', { qos: 1, retain: true });
    await pb.publishAsync(`${base}/2`, 'two', { qos: 1, retain: true });
    await holds(la, `${base}/2`, 'two');
    await holds(lb, `${base}/1`, 'one');
    const live: string[] = [];
    const watcher = await client(t, lb);
    watcher.on('message', (_topic, payload) => live.push(payload.toString()));
    await watcher.subscribeAsync(`${base}/3`, { qos: 1 });
    await until(async () => {
      await pa.publishAsync(`${base}/3`, 'probe', { qos: 0 });
      await new Promise((resolve) => setTimeout(resolve, 20));
      return live.includes('probe');
    }, 'a probe from A to B');
    await pa.publishAsync(`${base}/3`, 'three', { qos: 1, retain: true });
    await until(() => live.includes('three'), 'the refused message still delivered on B');
    const refusals = async (node: Node) => {
      const text = await (await fetch(`${node.apiUrl}/metrics`)).text();
      return Number(
        /^pubsub_limit_refusals_total\{[^}]*limit="max_retained_messages"[^}]*\} (\d+)/m.exec(text)?.[1] ?? 0,
      );
    };
    assert.equal(await refusals(la), 1);
    // A replacement of a held topic is within the bound, from either node.
    await pb.publishAsync(`${base}/1`, 'uno', { qos: 1, retain: true });
    await holds(la, `${base}/1`, 'uno');
    for (const node of [la, lb])
      assert.deepEqual((await retainedOn(node, `${base}/#`)).map((m) => m.payload).sort(), ['two', 'uno']);
  });
});

/** A TCP proxy to NATS that can be cut (every connection closed, new ones refused) and restored. */
async function proxy(t: TestContext, target: number): Promise<{ url: string; cut(): void; restore(): void }> {
  let cut = false;
  const sockets = new Set<Socket>();
  const server = createServer((inbound) => {
    if (cut) {
      inbound.destroy();
      return;
    }
    const outbound = tcpConnect(target, '127.0.0.1');
    for (const [s, other] of [
      [inbound, outbound],
      [outbound, inbound],
    ] as const) {
      sockets.add(s);
      s.pipe(other);
      s.on('error', () => other.destroy());
      s.on('close', () => {
        sockets.delete(s);
        other.destroy();
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  const { port } = server.address() as { port: number };
  return {
    url: `nats://127.0.0.1:${port}`,
    cut() {
      cut = true;
      for (const s of sockets) s.destroy();
    },
    restore() {
      cut = false;
    },
  };
}

describeWithTool('cluster: retained messages across a lost link', natsServer, () => {
  it('a retained message set on B while its link was down (its PUBACK 0x80 once B is fenced), B killed before the link came back: B writes it to the stream when it restarts', async (t) => {
    const n = await startNats(t);
    const cable = await proxy(t, n.port);
    const dataDir = join(tempDir(t), 'data');
    const la = await startNode(t, n, 'back-a');
    const lb = await startNode(t, { url: cable.url }, 'back-b', [], dataDir);
    const topic = `${uniqueName('back')}/x`;
    cable.cut();
    await until(async () => (await fetch(`${lb.apiUrl}/readyz`)).status === 503, "B's link down");
    const pb = await client(t, lb);
    // The stream cannot take them: each PUBACK says so (0x80) when B is fenced, 3 s without
    // contact, after B's own store committed them (what B writes back when it restarts).
    for (const [t2, payload] of [
      [topic, 'acknowledged'],
      [`$dev/${topic}`, 'dollar'],
    ] as const)
      await assert.rejects(
        pb.publishAsync(t2, payload, { qos: 1, retain: true }),
        (err: { code?: number }) => {
          assert.equal(err.code, 0x80);
          return true;
        },
      );
    assert.equal(await metric(lb, 'pubsub_cluster_retained_pending'), 2, 'both kept for the stream');
    await pb.endAsync(true);
    lb.child.process.kill('SIGKILL');
    await lb.child.waitForExit();
    cable.restore();
    await startNode(t, n, 'back-b', [], dataDir);
    await holds(la, topic, 'acknowledged');
    await holds(la, `$dev/${topic}`, 'dollar');
    const sub = await client(t, la, { protocolVersion: 4 });
    const got = await replay(sub, topic, { qos: 1 }, 'acknowledged');
    assert.deepEqual(
      got.map((p) => [p.payload.toString(), p.retain]),
      [['acknowledged', true]],
    );
  });

  it("set on A while B's link is down reaches B when it is back, and what B set meanwhile reaches A", async (t) => {
    const n = await startNats(t);
    const cable = await proxy(t, n.port);
    const [la, lb] = await Promise.all([startNode(t, n, 'cut-a'), startNode(t, { url: cable.url }, 'cut-b')]);
    const base = uniqueName('cut');
    const pa = await client(t, la);
    const pb = await client(t, lb);
    await pa.publishAsync(`${base}/before`, 'seen', { qos: 1, retain: true });
    await holds(lb, `${base}/before`, 'seen');
    cable.cut();
    await until(async () => (await fetch(`${lb.apiUrl}/readyz`)).status === 503, "B's link down");
    await pa.publishAsync(`${base}/during-a`, 'from a', { qos: 1, retain: true });
    await pa.publishAsync(`${base}/before`, '', { qos: 1, retain: true });
    await pb.publishAsync(`${base}/during-b`, 'from b', { qos: 0, retain: true }); // its PUBACK would wait
    // B serves its cache meanwhile: its own write at once, A's not yet.
    assert.deepEqual((await retainedOn(lb, `${base}/#`)).map((m) => m.payload).sort(), ['from b', 'seen']);
    assert.equal(await metric(lb, 'pubsub_cluster_retained_pending'), 1, 'kept for the stream');
    cable.restore();
    await until(async () => (await fetch(`${lb.apiUrl}/readyz`)).status === 200, "B's link back");
    await holds(lb, `${base}/during-a`, 'from a');
    await holds(lb, `${base}/before`, undefined);
    await holds(la, `${base}/during-b`, 'from b');
    await until(
      async () => (await metric(lb, 'pubsub_cluster_retained_pending')) === 0,
      'the stream took it',
    );
    assert.ok((await metric(lb, 'pubsub_cluster_retained_written_total')) >= 1);
    const sub = await client(t, lb, { protocolVersion: 4 });
    const got = await replay(sub, `${base}/#`, { qos: 1 }, 'from a');
    assert.deepEqual(got.map((p) => p.payload.toString()).sort(), ['from a', 'from b']);
  });
});
