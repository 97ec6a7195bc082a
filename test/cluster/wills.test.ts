/**
 * The wills of a node that dies (issue 19, src/cluster/will-records.ts): three `pubsub serve`
 * nodes on three nats-servers (`--cluster-replicas 3`); clients with wills (Will Delay Interval
 * 2 s) on node A, a watcher on node C; A is SIGKILLed. The will of the client that never comes
 * back is published once (by B or C: both arm it), after they forgot A (6 s) and the delay; not
 * the will of the client that reconnects to B within the delay (Clean Start 0 [MQTT-3.1.3-9]);
 * never the will of the client that said DISCONNECT 0x00 [MQTT-3.1.2-10]. A node stopped
 * cleanly leaves no will behind.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import mqtt from 'mqtt';
import { until } from '../helpers/child-process.ts';
import { collecting, metric, type Node, startNats, startNatsCluster, startNode } from '../helpers/cluster.ts';
import { describeWithTool, natsServer, uniqueName } from '../helpers/interop-tools.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describeWithTool('cluster: the wills of a node that dies', natsServer, () => {
  it('three nodes on three NATS servers: a survivor publishes the will of a client of a SIGKILLed node after its delay, once; not for a client back in time, nor after a normal DISCONNECT', async (t) => {
    const { urls } = await startNatsCluster(t, 3);
    // Info logs: a failure prints what the survivors did with the wills (below).
    const replicas = ['--cluster-replicas', '3', '--log-level', 'info'];
    const [a, b, c] = await Promise.all(
      ['a', 'b', 'c'].map((n) => startNode(t, { url: urls }, `wills-${n}`, replicas)),
    );
    const topic = uniqueName('wills');
    const { got } = await collecting(t, c!.urls.mqtt!, `${topic}/#`);
    const options = (name: string): mqtt.IClientOptions => ({
      protocolVersion: 5,
      clientId: `${topic}-${name}`,
      clean: false,
      reconnectPeriod: 0,
      properties: { sessionExpiryInterval: 60 },
      will: {
        topic: `${topic}/${name}`,
        payload: Buffer.from(name),
        qos: 1,
        retain: false,
        properties: { willDelayInterval: 2 },
      },
    });
    const clients = await Promise.all(
      ['lost', 'back', 'polite'].map((name) => mqtt.connectAsync(a!.urls.mqtt!, options(name))),
    );
    for (const c of clients) t.after(() => c.endAsync(true));
    await clients[2]!.endAsync(); // DISCONNECT 0x00: the will is discarded
    // A wrote the three records (and deleted polite's).
    await until(
      async () => (await metric(a!, 'pubsub_cluster_wills_written_total')) >= 3,
      "A's will records",
    );
    await sleep(200);

    await a!.child.kill(); // SIGKILL: no goodbye, no clean-up
    const killedAt = Date.now();
    // `back` comes back on B within the delay: B waits until A is forgotten (A does not answer),
    // then resumes the session from the journal; its claim cancels the will.
    const connecting = mqtt.connectAsync(b!.urls.mqtt!, { ...options('back'), will: undefined });

    // A survivor forgets A once it has been silent for 6 s (each on its own 2 s tick); the will
    // waits its 2 s delay from then.
    const knowsA = async (node: Node) =>
      (await node.api('/cluster')).body.result.nodes.some((n) => n.name === 'wills-a');
    await until(async () => !(await knowsA(b!)) || !(await knowsA(c!)), 'B or C forgets A', 20_000);
    const forgotAt = Date.now();
    assert.equal(got.length, 0, 'nothing before a survivor forgot A');
    const again = await connecting;
    t.after(() => again.endAsync(true));
    await until(
      () => got.includes('lost'),
      () => `the will of the client that did not come back\n${b!.child.report()}\n${c!.child.report()}`,
    );
    const waited = Date.now() - forgotAt;
    assert.ok(waited >= 1800, `published after its delay (${waited} ms after the first survivor forgot A)`);
    assert.ok(Date.now() - killedAt < 15_000, 'within 6 s + the delay (and a margin) of the kill');
    await sleep(3000);
    assert.deepEqual(
      got,
      ['lost'],
      `once; not for the client back in time nor the polite one\n${b!.child.lines.filter((l) => /will|adopt|claim/i.test(l)).join('\n')}\n${c!.child.lines.filter((l) => /will|adopt|claim/i.test(l)).join('\n')}`,
    );
    // Both survivors armed the two wills; one of them published `lost`, one cancelled `back`.
    const sum = async (name: string) => (await metric(b!, name)) + (await metric(c!, name));
    assert.equal(await sum('pubsub_cluster_wills_published_total'), 1);
    assert.equal(await sum('pubsub_cluster_wills_cancelled_total'), 1);
  });

  it('a node stopped cleanly leaves no will to publish', async (t) => {
    const nats = await startNats(t);
    const a = await startNode(t, nats, 'wills-stop-a');
    const b = await startNode(t, nats, 'wills-stop-b');
    const topic = uniqueName('wills-stop');
    const { got } = await collecting(t, b.urls.mqtt!, `${topic}/#`);
    const client = await mqtt.connectAsync(a.urls.mqtt!, {
      protocolVersion: 5,
      clientId: `${topic}-c`,
      reconnectPeriod: 0,
      will: { topic: `${topic}/c`, payload: Buffer.from('c'), qos: 1, retain: false },
    });
    t.after(() => client.endAsync(true));
    await until(async () => (await metric(a, 'pubsub_cluster_wills_written_total')) >= 1, "A's will record");
    await a.stop();
    await sleep(8000); // past the 6 s after which a silent node is forgotten
    assert.deepEqual(got, []);
    assert.equal(await metric(b, 'pubsub_cluster_wills_published_total'), 0);
  });
});

describeWithTool('cluster: the wills of a node restarted after a crash', natsServer, () => {
  it('the restarted node publishes, once, the will of a connection that died with its earlier process', async (t) => {
    const nats = await startNats(t);
    const a = await startNode(t, nats, 'wills-restart-a');
    const b = await startNode(t, nats, 'wills-restart-b');
    const topic = uniqueName('wills-restart');
    const { got } = await collecting(t, b.urls.mqtt!, `${topic}/#`);
    const client = await mqtt.connectAsync(a.urls.mqtt!, {
      protocolVersion: 5,
      clientId: `${topic}-c`,
      reconnectPeriod: 0,
      will: { topic: `${topic}/c`, payload: Buffer.from('crashed'), qos: 1, retain: false },
    });
    t.after(() => client.endAsync(true));
    await until(async () => (await metric(a, 'pubsub_cluster_wills_written_total')) >= 1, "A's will record");
    await a.child.kill(); // SIGKILL: the will is not published by the process that held it
    const again = await startNode(t, nats, 'wills-restart-a', [], a.dataDir);
    await until(
      () => got.includes('crashed'),
      () => `the will, after the restart\n${again.child.report()}`,
    );
    await sleep(8000); // past the 6 s after which B could have taken the old process for gone
    assert.deepEqual(got, ['crashed'], 'once');
  });
});
