/**
 * A node restarting from its disk after one of its sessions was resumed elsewhere
 * (src/cluster/journal-restart.ts): its restored copy is stale and is let go, so the client
 * coming back to it gets the newer session (what it was sent meanwhile, its new subscription),
 * not the old copy (what it already had, again). One nats-server with JetStream, two nodes, A
 * SIGKILLed with its data directory kept and started again from it; MQTT.js v5.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it, type TestContext } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { until } from '../helpers/child-process.ts';
import { type Node, startNats, startNode } from '../helpers/cluster.ts';
import { describeWithTool, natsServer, uniqueName } from '../helpers/interop-tools.ts';

interface Device {
  client: MqttClient;
  present: boolean;
  got: string[];
}

/** The persistent client `id` on `node`: whether its session was present, and what it gets. */
async function device(t: TestContext, node: Node, id: string): Promise<Device> {
  const client = mqtt.connect(node.urls.mqtt!, {
    protocolVersion: 5,
    clientId: id,
    clean: false,
    reconnectPeriod: 0,
    properties: { sessionExpiryInterval: 600 },
  });
  t.after(() => client.endAsync(true));
  const got: string[] = [];
  client.on('message', (_topic, payload) => got.push(payload.toString()));
  const present = await new Promise<boolean>((resolve, reject) => {
    client.once('connect', (connack) => resolve(connack.sessionPresent));
    client.once('error', reject);
  });
  return { client, present, got };
}

async function publish(t: TestContext, node: Node, topic: string, payload: string): Promise<void> {
  const pub = await mqtt.connectAsync(node.urls.mqtt!, { protocolVersion: 5, reconnectPeriod: 0 });
  t.after(() => pub.endAsync(true));
  await pub.publishAsync(topic, payload, { qos: 1 }).catch((err: Error) => {
    throw new Error(`${payload}: ${err.message}`);
  });
  await pub.endAsync();
}

describeWithTool(
  'cluster: a node restarting from its disk lets go of copies resumed elsewhere',
  natsServer,
  () => {
    it('dev on A, A SIGKILLed (disk kept), dev resumes on B and gets more, A restarts: dev back on A gets the newer session', async (t) => {
      const nats = await startNats(t);
      const dirA = mkdtempSync(join(tmpdir(), 'pubsub-restart-'));
      t.after(() => rmSync(dirA, { recursive: true, force: true }));
      const [a, b] = await Promise.all([
        startNode(t, nats, 'restart-a', [], join(dirA, 'data')),
        startNode(t, nats, 'restart-b'),
      ]);
      const id = uniqueName('dev');
      const first = await device(t, a!, id);
      await first.client.subscribeAsync(`${id}/#`, { qos: 1 });
      await first.client.endAsync();
      await publish(t, a!, `${id}/x`, 'm1'); // queued for it on A, journaled

      await a!.child.kill(); // SIGKILL: its data dir stays
      const onB = await device(t, b!, id); // B reads it from the journal once A is forgotten
      assert.equal(onB.present, true, 'resumed on B');
      await until(() => onB.got.includes('m1'), 'm1 delivered on B');
      await onB.client.subscribeAsync(`${id}-new/#`, { qos: 1 });
      await onB.client.endAsync();
      // Until B forgets A, a QoS 1 message A's sessions wanted is refused (A cannot hold it).
      await until(
        async () => !(await b!.api('/cluster')).body.result.nodes.some((n) => n.name === 'restart-a'),
        'B forgets A',
      );
      await publish(t, b!, `${id}/x`, 'm2'); // queued for it on B

      const again = await startNode(t, nats, 'restart-a', [], join(dirA, 'data'));
      const back = await device(t, again, id);
      assert.equal(back.present, true, 'the session is present on A again');
      await until(
        () => back.got.includes('m2'),
        () => `m2 (queued on B) delivered on A: got ${back.got.join(',')}`,
      );
      await publish(t, b!, `${id}-new/y`, 'm3');
      await until(
        () => back.got.includes('m3'),
        () => `the subscription made on B holds on A: got ${back.got.join(',')}`,
      );
      await new Promise((resolve) => setTimeout(resolve, 300)); // an old copy's m1 would be here by now
      assert.ok(
        !back.got.includes('m1'),
        `m1, acknowledged on B, is not delivered again: got ${back.got.join(',')}`,
      );
    });
  },
);
