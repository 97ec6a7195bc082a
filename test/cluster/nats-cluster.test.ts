/**
 * The documented topology (docs/cluster.md): pubsub nodes on a cluster of three nats-servers
 * with `--cluster-replicas 3`. The control-plane bucket is made with three replicas; a change
 * made on one node is served by the other; messages cross; and with one of the three servers
 * SIGKILLed (the one node A reached, if any) the nodes' links move to the others, the control
 * plane stays writable (two of three replicas are a quorum) and messages cross again.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import mqtt from 'mqtt';
import { until } from '../helpers/child-process.ts';
import { collecting, type Node, startNatsCluster, startNode } from '../helpers/cluster.ts';
import { describeWithTool, natsServer, uniqueName } from '../helpers/interop-tools.ts';

/** A namespace made through `on`'s API with A's operator token. */
async function createNamespace(on: Node, token: string, account: string, name: string): Promise<number> {
  const res = await fetch(`${on.apiUrl}/client/v4/accounts/${account}/pubsub/namespaces`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name }),
  });
  lastAnswer = `${res.status} ${await res.text()}`;
  return res.status;
}
/** The last answer `createNamespace` got, for a failure's description. */
let lastAnswer = '';

async function hasNamespace(on: Node, token: string, account: string, name: string): Promise<boolean> {
  const res = await fetch(`${on.apiUrl}/client/v4/accounts/${account}/pubsub/namespaces/${name}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  return res.status === 200;
}

describeWithTool('cluster: on a three-server NATS cluster with --cluster-replicas 3', natsServer, () => {
  it('replicated control plane, messages across, and both survive losing one NATS server', async (t) => {
    const { members, urls } = await startNatsCluster(t, 3);
    const a = await startNode(t, { url: urls }, 'three-a', ['--cluster-replicas', '3']);
    const b = await startNode(t, { url: urls }, 'three-b', ['--cluster-replicas', '3']);

    // The bucket has three replicas.
    const jsz = (await (await fetch(`${members[0]!.monitorUrl}/jsz?streams=true&config=true`)).json()) as {
      account_details?: { stream_detail?: { name: string; config?: { num_replicas?: number } }[] }[];
    };
    const streams = (jsz.account_details ?? []).flatMap((d) => d.stream_detail ?? []);
    const bucket = streams.find((s) => s.name === 'KV_pubsub-control');
    assert.equal(bucket?.config?.num_replicas, 3, JSON.stringify(streams.map((s) => s.name)));

    const ns1 = uniqueName('three').toLowerCase();
    assert.equal(await createNamespace(a, a.token, a.accountId, ns1), 200);
    await until(() => hasNamespace(b, a.token, a.accountId, ns1), 'the namespace made on A, on B');

    const topic = `${uniqueName('three')}/x`;
    const { got } = await collecting(t, b.urls.mqtt!, topic);
    const pub = await mqtt.connectAsync(a.urls.mqtt!, { protocolVersion: 5, reconnectPeriod: 0 });
    t.after(() => pub.endAsync(true));
    const crosses = async (payload: string) =>
      until(async () => {
        await pub.publishAsync(topic, payload, { qos: 1 });
        await new Promise((resolve) => setTimeout(resolve, 50));
        return got.includes(payload);
      }, `${payload} from A to B`);
    await crosses('before');

    await members[0]!.kill();
    // Every node is (again) linked to a live server and in step with the control plane.
    for (const node of [a, b])
      await until(
        async () => (await node.api('/readyz')).status === 200,
        () => `ready after a NATS server died\n${node.child.report()}`,
        30_000,
      );
    const ns2 = uniqueName('three').toLowerCase();
    await until(
      async () => (await createNamespace(b, a.token, a.accountId, ns2)) === 200,
      () => `a change on B with two of three servers; last answer ${lastAnswer}\n${b.child.report()}`,
      20_000,
    );
    await until(
      () => hasNamespace(a, a.token, a.accountId, ns2),
      () => `the namespace made on B, on A\n${a.child.report()}`,
    );
    await crosses('after');
  });
});
