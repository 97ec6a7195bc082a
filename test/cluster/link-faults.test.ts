/**
 * The NATS link's faults (issue 18): NATS unreachable at start (said once, retried, /readyz 503
 * until it answers), and NATS killed mid-run (/readyz 503 on every node, local traffic goes on,
 * cross-node messages are dropped and counted, a QoS 1 one's PUBACK says 0x80, and once NATS is back the nodes re-announce
 * their interest and messages cross again).
 */
import assert from 'node:assert/strict';
import { it, type TestContext } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { until } from '../helpers/child-process.ts';
import { freePort, metric, startNats, startNode } from '../helpers/cluster.ts';
import { describeWithTool, natsServer, uniqueName } from '../helpers/interop-tools.ts';
import { startServe } from '../helpers/pubsub-process.ts';

async function connect(
  t: TestContext,
  node: { urls: Record<string, string> },
): Promise<{ client: MqttClient; got: string[] }> {
  const client = await mqtt.connectAsync(node.urls.mqtt!, {
    protocolVersion: 5,
    reconnectPeriod: 0,
    clientId: uniqueName('f'),
  });
  t.after(() => client.endAsync(true));
  const got: string[] = [];
  client.on('message', (_topic, payload) => got.push(payload.toString()));
  return { client, got };
}

/** Publishes `payload` on `from` every 20 ms until `got` holds it. */
async function crosses(from: MqttClient, topic: string, payload: string, got: string[]): Promise<void> {
  await until(async () => {
    await from.publishAsync(topic, payload, { qos: 0 });
    await new Promise((resolve) => setTimeout(resolve, 20));
    return got.includes(payload);
  }, `${payload} across nodes`);
}

describeWithTool('cluster: the NATS link fails and recovers', natsServer, () => {
  it('NATS unreachable at start: said once, /readyz 503 naming cluster, ready once NATS answers', async (t) => {
    const port = await freePort();
    const node = await startServe(t, {
      args: ['--cluster', `nats://127.0.0.1:${port}`, '--node-name', 'lonely'],
    });
    const readyz = async () => {
      const res = await fetch(`${node.apiUrl}/readyz`);
      return { status: res.status, body: (await res.json()) as { failing?: string[] } };
    };
    await node.child.waitForLine((l) => l.includes('NATS unreachable'), 'the unreachable warning');
    const down = await readyz();
    assert.equal(down.status, 503);
    assert.deepEqual(down.body.failing, ['cluster']);
    // Local clients are served meanwhile.
    const local = await connect(t, node);
    await local.client.subscribeAsync('local/x');
    await local.client.publishAsync('local/x', 'here', { qos: 1 });
    await until(() => local.got.includes('here'), 'local traffic while NATS is unreachable');
    await startNats(t, port);
    await until(async () => (await readyz()).status === 200, '/readyz 200 once NATS answers');
    assert.equal(
      node.child.lines.filter((l) => l.includes('NATS unreachable')).length,
      1,
      'the warning is said once, not per retry',
    );
  });

  it('NATS killed mid-run: /readyz 503, local traffic goes on, cross-node drops counted, then traffic crosses again', async (t) => {
    const nats = await startNats(t);
    const [a, b] = await Promise.all([startNode(t, nats, 'fault-a'), startNode(t, nats, 'fault-b')]);
    const topic = `${uniqueName('fault')}/x`;
    const remote = await connect(t, b);
    await remote.client.subscribeAsync(topic, { qos: 1 });
    const local = await connect(t, a);
    await local.client.subscribeAsync(topic, { qos: 1 });
    const pub = await connect(t, a);
    await crosses(pub.client, topic, 'before', remote.got);

    await nats.kill();
    for (const node of [a, b])
      await until(async () => (await node.api('/readyz')).status === 503, `${node.dataDir} /readyz 503`);
    assert.equal(await metric(a, 'pubsub_cluster_link_up'), 0);
    await a.child.waitForLine((l) => l.includes('cluster link lost'), 'the link loss logged');
    const dropped = await metric(a, 'pubsub_cluster_messages_dropped_total');
    // B wanted it and cannot get it: the PUBACK says so (0x80), the local delivery is made.
    await assert.rejects(
      pub.client.publishAsync(topic, 'while down', { qos: 1 }),
      (err: Error & { code?: number }) => {
        assert.equal(err.code, 0x80, err.message);
        return true;
      },
    );
    await until(() => local.got.includes('while down'), 'local delivery while NATS is down');
    assert.equal(await metric(a, 'pubsub_cluster_messages_dropped_total'), dropped + 1);

    // Interest made while NATS is away is announced when it comes back.
    const later = `${uniqueName('later')}/x`;
    await remote.client.subscribeAsync(later, { qos: 1 });
    await nats.start();
    for (const node of [a, b])
      await until(
        async () => (await node.api('/readyz')).status === 200,
        `${node.dataDir} /readyz 200 again`,
      );
    assert.equal(await metric(a, 'pubsub_cluster_link_up'), 1);
    await crosses(pub.client, topic, 'after', remote.got);
    await crosses(pub.client, later, 'later', remote.got);
    assert.equal(a.child.lines.filter((l) => l.includes('cluster link lost')).length, 1);
    assert.ok(!remote.got.includes('while down'));
  });

  it('two nodes with one --node-name: each logs a warning naming it', async (t) => {
    const nats = await startNats(t);
    const [a, b] = await Promise.all([startNode(t, nats, 'twin'), startNode(t, nats, 'twin')]);
    for (const node of [a, b])
      await node.child.waitForLine(
        (l) => l.includes('another node calls itself twin'),
        'the duplicate-name warning',
      );
  });
});
