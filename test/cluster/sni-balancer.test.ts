/**
 * TLS SNI host names work through a TCP load balancer in front of a cluster (issue 18,
 * docs/cluster.md "Topology"): the balancer passes TCP through without terminating TLS, so each
 * node sees the client's SNI `<broker>.<namespace>.<domain>` and routes it to that broker's
 * tenant. The balancer here is a round-robin TCP relay (what HAProxy `mode tcp` or nginx
 * `stream` do) in front of the TLS listeners of two nodes; consecutive connections land on
 * alternate nodes. Brokers are created on each node (the control plane is per node until it is
 * shared).
 */
import assert from 'node:assert/strict';
import { createServer, type Server as NetServer, connect as netConnect } from 'node:net';
import { after, before, it } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { createTestPki, type TestPki } from '../helpers/certificates.ts';
import { until } from '../helpers/child-process.ts';
import { describeWithTool, natsServer, uniqueName } from '../helpers/interop-tools.ts';
import { addAnonymousBrokers } from '../helpers/server.ts';
import { type ServerPair, startPair } from '../helpers/server-pair.ts';

/** A round-robin TCP relay to `ports`; returns it and how many connections went to each. */
async function balancer(ports: number[]): Promise<{ server: NetServer; port: number; counts: number[] }> {
  const counts = ports.map(() => 0);
  let next = 0;
  const server = createServer((downstream) => {
    const i = next++ % ports.length;
    counts[i]!++;
    const upstream = netConnect(ports[i]!, '127.0.0.1');
    downstream.pipe(upstream).pipe(downstream);
    for (const [a, b] of [
      [downstream, upstream],
      [upstream, downstream],
    ] as const) {
      a.on('error', () => b.destroy());
      a.on('close', () => b.destroy());
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as { port: number }).port, counts };
}

describeWithTool('cluster: TLS SNI through a TCP load balancer', natsServer, () => {
  let pki: TestPki;
  let pair: ServerPair;
  let lb: Awaited<ReturnType<typeof balancer>>;
  before(async () => {
    pki = createTestPki();
    pair = await startPair({ tlsCert: pki.server.certFile, tlsKey: pki.server.keyFile });
    for (const node of [pair.a, pair.b]) addAnonymousBrokers(node, 'pubsub', ['b1', 'b2']);
    lb = await balancer([pair.a, pair.b].map((node) => Number(new URL(node.tlsUrl).port)));
  });
  after(async () => {
    await new Promise((resolve) => lb.server.close(resolve));
    await pair.close();
    pki.remove();
  });

  it('each connection reaches the broker its SNI names on whichever node it lands; messages cross nodes within that broker only', async (t) => {
    const connect = async (broker: string, protocolVersion: 4 | 5): Promise<MqttClient> => {
      const client = await mqtt.connectAsync(`mqtts://127.0.0.1:${lb.port}`, {
        protocolVersion,
        ca: pki.ca.cert,
        servername: `${broker}.pubsub.localhost`,
        reconnectPeriod: 0,
        clientId: uniqueName(broker),
      });
      t.after(() => client.endAsync(true));
      return client;
    };
    const topic = `${uniqueName('sni')}/x`;
    const got = { b1: [] as string[], b2: [] as string[] };
    // Round robin: the 1st and 3rd connections land on node A, the 2nd and 4th on node B.
    const sub1 = await connect('b1', 5); // A
    const sub2 = await connect('b2', 4); // B
    for (const [name, sub] of [
      ['b1', sub1],
      ['b2', sub2],
    ] as const) {
      sub.on('message', (_topic, payload) => got[name].push(payload.toString()));
      await sub.subscribeAsync(topic, { qos: 1 });
    }
    const pub2 = await connect('b2', 5); // A: b2's message crosses to B
    const pub1 = await connect('b1', 4); // B: b1's message crosses to A
    assert.deepEqual(lb.counts, [2, 2], 'the balancer spread the connections over both nodes');
    await pair.settled();
    await pub1.publishAsync(topic, 'to b1', { qos: 1 });
    await pub2.publishAsync(topic, 'to b2', { qos: 1 });
    await until(() => got.b1.length + got.b2.length >= 2, 'both messages');
    assert.deepEqual(got, { b1: ['to b1'], b2: ['to b2'] }, 'each broker gets its own message, across nodes');
    assert.ok(
      pair.a.server.cluster!.stats.sent >= 1 && pair.b.server.cluster!.stats.sent >= 1,
      'both crossed',
    );
  });
});
