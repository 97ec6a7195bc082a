/**
 * Shared subscriptions cluster-wide (issue 18, section 4.8.2): members of `$share/{name}/{filter}`
 * on several `pubsub serve --cluster` nodes form one group; each message goes to exactly one
 * member in the whole cluster, a member's unacknowledged QoS 1 messages go to another member
 * (on another node if need be) when its session ends, a member leaving or a node dying moves
 * the messages to the members left, and groups stay apart by name, filter and broker.
 *
 * Group membership reaches the other nodes within milliseconds: each test first publishes
 * probes (payload `probe`) until every member got one from every publishing node (so the
 * group is known there), and counts the rest.
 */
import assert from 'node:assert/strict';
import { after, before, it, type TestContext } from 'node:test';
import { connect as natsConnect } from '@nats-io/transport-node';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { hashString } from '../../src/broker/index.ts';
import { BatchWriter } from '../../src/cluster/codec.ts';
import { escapeLevel, topicSubject } from '../../src/cluster/subjects.ts';
import { Message } from '../../src/router/index.ts';
import { type Child, until } from '../helpers/child-process.ts';
import { type Nats, type Node, startNats, startNode } from '../helpers/cluster.ts';
import {
  describeWithTool,
  mosquittoClients,
  mosquittoSub,
  natsServer,
  uniqueName,
} from '../helpers/interop-tools.ts';

/** A client and the payloads it received, probes apart. */
interface Member {
  client: MqttClient;
  got: string[];
  probes: number;
}

const cleanups: (() => unknown)[] = [];
/** The suite's own context: what it starts is stopped when the suite ends. */
const suite = { after: (fn: () => unknown) => cleanups.push(fn) } as unknown as TestContext;

let nats: Nats;
let a: Node;
let b: Node;
let c: Node;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Each payload's count, for "exactly once" checks. */
function counts(payloads: string[]): Map<string, number> {
  const seen = new Map<string, number>();
  for (const p of payloads) seen.set(p, (seen.get(p) ?? 0) + 1);
  return seen;
}

function assertExactlyOnce(payloads: string[], expected: string[], what: string): void {
  const seen = counts(payloads);
  const twice = [...seen].filter(([, n]) => n > 1).map(([p]) => p);
  assert.deepEqual(twice, [], `${what}: delivered more than once`);
  assert.deepEqual([...seen.keys()].sort(), [...expected].sort(), `${what}: every message once`);
}

describeWithTool('cluster: shared subscriptions across nodes', natsServer, () => {
  before(async () => {
    nats = await startNats(suite);
    [a, b, c] = await Promise.all([
      startNode(suite, nats, 'share-a'),
      startNode(suite, nats, 'share-b'),
      startNode(suite, nats, 'share-c'),
    ]);
  });
  after(async () => {
    for (const fn of cleanups.reverse()) await fn();
  });

  async function connect(t: TestContext, node: Node, options: IClientOptions = {}): Promise<MqttClient> {
    const client = await mqtt.connectAsync(node.urls.mqtt!, {
      protocolVersion: 5,
      reconnectPeriod: 0,
      clientId: uniqueName('c'),
      ...options,
    });
    t.after(() => client.endAsync(true));
    return client;
  }

  async function member(
    t: TestContext,
    node: Node,
    filter: string,
    options: IClientOptions = {},
    qos: 0 | 1 | 2 = 1,
  ): Promise<Member> {
    const client = await connect(t, node, options);
    const m: Member = { client, got: [], probes: 0 };
    client.on('message', (_topic, payload) => {
      const text = payload.toString();
      if (text === 'probe') m.probes++;
      else m.got.push(text);
    });
    await client.subscribeAsync(filter, { qos });
    return m;
  }

  /** Probes from `from` to `topic` until each of `members` got one since the call. */
  async function probe(from: MqttClient, topic: string, members: { probes: number }[]): Promise<void> {
    const before = members.map((m) => m.probes);
    await until(async () => {
      await from.publishAsync(topic, 'probe', { qos: 0 });
      await sleep(20);
      return members.every((m, i) => m.probes > before[i]!);
    }, `a probe on ${topic} to every member`);
  }

  async function publishAll(client: MqttClient, topic: string, payloads: string[], qos: 0 | 1 | 2 = 1) {
    for (let i = 0; i < payloads.length; i += 100)
      await Promise.all(payloads.slice(i, i + 100).map((p) => client.publishAsync(topic, p, { qos })));
  }

  it('MQTT.js v5: 1,000 messages published on A (QoS 1) and 1,000 on C (QoS 2) reach one member each across A and B; a plain subscriber gets all [MQTT-4.8.2-3]', async (t) => {
    const base = uniqueName('sh');
    const topic = `${base}/x`;
    const onA = await member(t, a, `$share/g/${base}/#`);
    const onB = await member(t, b, `$share/g/${base}/#`);
    const plain = await member(t, b, `${base}/#`);
    const pubA = await connect(t, a);
    const pubC = await connect(t, c);
    await probe(pubA, topic, [onA, onB, plain]);
    await probe(pubC, topic, [onA, onB, plain]);

    const fromA = Array.from({ length: 1000 }, (_, i) => `a${i}`);
    const fromC = Array.from({ length: 1000 }, (_, i) => `c${i}`);
    await publishAll(pubA, topic, fromA);
    const reasons = new Set<number>();
    pubC.on('packetreceive', (packet) => {
      if (packet.cmd === 'pubrec') reasons.add(packet.reasonCode ?? 0);
    });
    await publishAll(pubC, topic, fromC, 2); // QoS 2 in, QoS 1 out (the members' granted QoS)
    assert.deepEqual([...reasons], [0], 'members elsewhere count: no 0x10 on C');
    const all = [...fromA, ...fromC];
    await until(() => onA.got.length + onB.got.length >= all.length, 'every message at a member');
    await until(() => plain.got.length >= all.length, 'every message at the plain subscriber');
    await sleep(300); // a copy would arrive within this
    assertExactlyOnce([...onA.got, ...onB.got], all, 'the group');
    assertExactlyOnce(plain.got, all, 'the plain subscriber');
    for (const [m, name] of [
      [onA, 'A'],
      [onB, 'B'],
    ] as const) {
      assert.ok(
        m.got.some((p) => p.startsWith('a')),
        `the member on ${name} got some of A's messages`,
      );
      assert.ok(
        m.got.some((p) => p.startsWith('c')),
        `the member on ${name} got some of C's messages`,
      );
    }
    // Round-robin over the two members, wherever they are: an even split of each publisher's.
    const fromAOnA = onA.got.filter((p) => p.startsWith('a')).length;
    assert.ok(Math.abs(fromAOnA - 500) <= 5, `A's messages split evenly (${fromAOnA} of 1000 on A)`);
  });

  it('a QoS 1 message a member on B never acknowledged goes to the member on A when its session ends (section 4.8.2)', async (t) => {
    const base = uniqueName('sh-ack');
    const topic = `${base}/x`;
    const filter = `$share/lv/${base}/x`;
    const held: string[] = [];
    // Session Expiry 0: the session ends with the connection; its PUBACKs are never sent.
    const leaving = await member(t, b, filter, {
      customHandleAcks: (_topic, payload, _packet, _done) => {
        held.push(payload.toString());
      },
    });
    const staying = await member(t, a, filter);
    const pub = await connect(t, a);
    await probe(pub, topic, [staying, leaving]);
    const sent = Array.from({ length: 20 }, (_, i) => `m${i}`);
    await publishAll(pub, topic, sent);
    await until(() => held.length > 0 && staying.got.length >= 10, 'each member has its share');
    await sleep(300);
    const before = staying.got.length;
    assert.ok(before < sent.length, `the member on B was chosen for some (${before} of 20 on A)`);
    leaving.client.stream.destroy(); // no PUBACK, no DISCONNECT
    await until(() => staying.got.length >= sent.length, 'the unacknowledged messages at the member on A');
    await sleep(300);
    assertExactlyOnce(staying.got, sent, 'the member on A');
  });

  it('a member leaving on B: the messages go to the member on A, none lost, even those already on their way to B', async (t) => {
    const base = uniqueName('sh-leave');
    const topic = `${base}/x`;
    const filter = `$share/lv/${base}/+`;
    const onA = await member(t, a, filter);
    const onB = await member(t, b, filter);
    const pub = await connect(t, a);
    await probe(pub, topic, [onA, onB]);
    const first = Array.from({ length: 20 }, (_, i) => `f${i}`);
    await publishAll(pub, topic, first);
    await until(() => onA.got.length + onB.got.length >= first.length, 'the first messages');
    assert.ok(onB.got.length > 0 && onA.got.length > 0, 'both members were chosen');
    await onB.client.unsubscribeAsync(filter);
    const aBefore = onA.got.length;
    const then = Array.from({ length: 200 }, (_, i) => `t${i}`);
    await publishAll(pub, topic, then);
    await until(() => onA.got.length - aBefore >= then.length, 'every later message at the member on A');
    await sleep(300);
    assertExactlyOnce(onA.got.slice(aBefore), then, 'the member on A');
  });

  it('a message sent to a node whose members left meanwhile is chosen again for a member elsewhere (QoS kept)', async (t) => {
    const base = uniqueName('sh-race');
    const topic = `${base}/x`;
    const onA = await member(t, a, `$share/race/${base}/x`);
    const pubB = await connect(t, b);
    await probe(pubB, topic, [onA]); // B knows A's group
    // What A would send if it had chosen B just before B's last member left: B has none.
    const nc = await natsConnect({ servers: nats.url });
    t.after(() => nc.close());
    const batch = new BatchWriter(1, topic, 16);
    batch.append(new Message({ topic, payload: Buffer.from('raced'), qos: 1, retain: false }));
    const subject = `pubsub.s.${escapeLevel('share-b')}.0.-.${escapeLevel('default.local')}.${escapeLevel('race')}.${escapeLevel(`${base}/x`)}${topicSubject('', topic)}`;
    let qos = -1;
    onA.client.on('message', (_t, payload, packet) => {
      if (payload.toString() === 'raced') qos = packet.qos;
    });
    nc.publish(subject, batch.bytes(1));
    await nc.flush();
    await until(() => onA.got.includes('raced'), 'the message at the member on A');
    assert.equal(qos, 1);
  });

  it('groups stay apart: the same share name on other filters and in another broker gets nothing of the others', async (t) => {
    const base = uniqueName('sh-apart');
    const other = await otherBroker();
    const x = [await member(t, a, `$share/g/${base}/x`), await member(t, b, `$share/g/${base}/x`)];
    const y = [await member(t, a, `$share/g/${base}/y`), await member(t, b, `$share/g/${base}/y`)];
    const asOther = { username: other, protocolVersion: 5 as const };
    const z = [
      await member(t, a, `$share/g/${base}/x`, asOther),
      await member(t, b, `$share/g/${base}/x`, asOther),
    ];
    const pub = await connect(t, a);
    const pubOther = await connect(t, c, asOther);
    await probe(pub, `${base}/x`, x);
    await probe(pub, `${base}/y`, y);
    await probe(pubOther, `${base}/x`, z);
    const xs = Array.from({ length: 50 }, (_, i) => `x${i}`);
    const ys = Array.from({ length: 50 }, (_, i) => `y${i}`);
    const zs = Array.from({ length: 50 }, (_, i) => `z${i}`);
    await publishAll(pub, `${base}/x`, xs);
    await publishAll(pub, `${base}/y`, ys);
    await publishAll(pubOther, `${base}/x`, zs);
    const got = (ms: Member[]) => ms.flatMap((m) => m.got);
    await until(
      () => got(x).length >= 50 && got(y).length >= 50 && got(z).length >= 50,
      'every group its messages',
    );
    await sleep(300);
    assertExactlyOnce(got(x), xs, `$share/g/${base}/x`);
    assertExactlyOnce(got(y), ys, `$share/g/${base}/y`);
    assertExactlyOnce(got(z), zs, `$share/g/${base}/x in broker ${other}`);
  });

  describeWithTool('with mosquitto clients', mosquittoClients, () => {
    it('v3.1.1: mosquitto_sub on B and MQTT.js on A share a group; each message once', async (t) => {
      const base = uniqueName('sh-v3');
      const topic = `${base}/x`;
      const filter = `$share/g3/${base}/x`;
      const sub: Child = await mosquittoSub(t, [
        ...['-h', '127.0.0.1', '-p', String(b.port('mqtt')), '-V', 'mqttv311', '-q', '1'],
        ...['-t', filter],
      ]);
      const onA = await member(t, a, filter, { protocolVersion: 4 });
      const pub = await connect(t, c, { protocolVersion: 4 });
      const subProbes = {
        get probes() {
          return sub.lines.filter((l) => l === 'probe').length;
        },
      };
      await probe(pub, topic, [onA, subProbes]);
      const sent = Array.from({ length: 200 }, (_, i) => `v${i}`);
      await publishAll(pub, topic, sent);
      // Its other lines are -d's debug output (`Client … received PUBLISH …`, `Subscribed …`).
      const fromSub = () => sub.lines.filter((l) => /^v\d+$/.test(l));
      await until(() => onA.got.length + fromSub().length >= sent.length, 'every message at a member');
      await sleep(300);
      assertExactlyOnce([...onA.got, ...fromSub()], sent, 'the group');
      assert.ok(fromSub().length > 0 && onA.got.length > 0, 'both members were chosen');
    });
  });

  it('a node that dies: once the others forget it, its members are chosen no more', async (t) => {
    const base = uniqueName('sh-dead');
    const topic = `${base}/x`;
    const filter = `$share/d/${base}/x`;
    const onA = await member(t, a, filter);
    const onC = await member(t, c, filter);
    const pub = await connect(t, a);
    await probe(pub, topic, [onA, onC]);
    onC.client.stream.destroy();
    await c.child.kill(); // SIGKILL: no goodbye
    await until(async () => {
      const { body } = await a.api('/cluster');
      return !body.result.nodes.some((n) => n.name === 'share-c');
    }, 'A forgets the dead node');
    const sent = Array.from({ length: 100 }, (_, i) => `d${i}`);
    await publishAll(pub, topic, sent);
    await until(() => onA.got.length >= sent.length, 'every message at the member on A');
    await sleep(300);
    assertExactlyOnce(onA.got, sent, 'the member on A');
  });
});

describeWithTool('cluster: shared subscriptions with --shared-strategy publisher-hash', natsServer, () => {
  const hashed: (() => unknown)[] = [];
  const context = { after: (fn: () => unknown) => hashed.push(fn) } as unknown as TestContext;
  let ha: Node;
  let hb: Node;
  before(async () => {
    const bus = await startNats(context);
    const args = ['--shared-strategy', 'publisher-hash'];
    [ha, hb] = await Promise.all([
      startNode(context, bus, 'hash-a', args),
      startNode(context, bus, 'hash-b', args),
    ]);
  });
  after(async () => {
    for (const fn of hashed.reverse()) await fn();
  });

  it("one publisher's messages stay on one member across nodes; publishers hashed to each slot reach each member", async (t) => {
    const base = uniqueName('sh-hash');
    const topic = `${base}/x`;
    const filter = `$share/h/${base}/x`;
    const members: Member[] = [];
    // One member on A (slot 0 from A), two on B (slots 1 and 2).
    for (const node of [ha, hb, hb]) {
      const client = await mqtt.connectAsync(node.urls.mqtt!, { protocolVersion: 5, reconnectPeriod: 0 });
      t.after(() => client.endAsync(true));
      const m: Member = { client, got: [], probes: 0 };
      client.on('message', (_topic, payload) => {
        const text = payload.toString();
        if (text === 'probe') m.probes++;
        else m.got.push(text);
      });
      await client.subscribeAsync(filter, { qos: 1 });
      members.push(m);
    }
    // A client id for each slot of the three (the strategy's hash, as the broker computes it).
    const publishers: MqttClient[] = [];
    for (let slot = 0; slot < 3; slot++) {
      let id = uniqueName('p');
      while (hashString(id) % 3 !== slot) id = uniqueName('p');
      const client = await mqtt.connectAsync(ha.urls.mqtt!, {
        protocolVersion: 5,
        reconnectPeriod: 0,
        clientId: id,
      });
      t.after(() => client.endAsync(true));
      publishers.push(client);
    }
    // B's members are known on A once the publisher of slot 1 or 2 reaches B.
    await until(async () => {
      await publishers[1]!.publishAsync(topic, 'probe', { qos: 0 });
      await publishers[2]!.publishAsync(topic, 'probe', { qos: 0 });
      await new Promise((resolve) => setTimeout(resolve, 20));
      return members[1]!.probes + members[2]!.probes > 0;
    }, 'the members on B known on A');
    const sent: string[] = [];
    for (const [i, client] of publishers.entries()) {
      const mine = Array.from({ length: 50 }, (_, n) => `p${i}-${n}`);
      sent.push(...mine);
      await Promise.all(mine.map((p) => client.publishAsync(topic, p, { qos: 1 })));
    }
    const got = () => members.flatMap((m) => m.got);
    await until(() => got().length >= sent.length, 'every message at a member');
    await new Promise((resolve) => setTimeout(resolve, 300));
    assertExactlyOnce(got(), sent, 'the group');
    const owners = [0, 1, 2].map((i) => members.findIndex((m) => m.got.some((p) => p.startsWith(`p${i}-`))));
    for (const [i, owner] of owners.entries())
      assert.equal(
        members[owner]!.got.filter((p) => p.startsWith(`p${i}-`)).length,
        50,
        `publisher ${i}'s messages all on one member`,
      );
    assert.deepEqual(owners, [0, 1, 2], "each slot is one member: A's, then B's in turn");
  });
});

/**
 * A broker `shared-other.shtest` (auth NONE), made through A's API; its MQTT user name once
 * every node has it (the control plane is shared: B and C serve it from A's write).
 */
async function otherBroker(): Promise<string> {
  const path = `/client/v4/accounts/${a.accountId}/pubsub/namespaces`;
  const headers = { authorization: `Bearer ${a.token}`, 'content-type': 'application/json' };
  const post = async (url: string, body: unknown) => {
    const res = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body) });
    assert.equal(res.status, 200, `POST ${url}: ${res.status}`);
  };
  await post(`${a.apiUrl}${path}`, { name: 'shtest' });
  await post(`${a.apiUrl}${path}/shtest/brokers`, { name: 'shared-other', auth_type: 'NONE' });
  for (const node of [b, c]) {
    await until(
      async () =>
        (await fetch(`${node.apiUrl}${path}/shtest/brokers/shared-other`, { headers })).status === 200,
      `broker shared-other.shtest on ${node.apiUrl}`,
    );
  }
  return 'shared-other.shtest';
}
