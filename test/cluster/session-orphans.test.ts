/**
 * Sessions of a node that dies are adopted by a surviving node (src/cluster/orphan-sessions.ts):
 * their subscriptions stay live, so QoS 1 messages published while their client is away, after
 * the node died, are queued for them and delivered when the client comes back on any node. One
 * nats-server with JetStream, three nodes (the first live node by name adopts); mosquitto_sub
 * for the persistent session, MQTT.js publishing.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { it } from 'node:test';
import mqtt from 'mqtt';
import { until } from '../helpers/child-process.ts';
import { metric, persistentMosquittoSub, startNats, startNode } from '../helpers/cluster.ts';
import { describeWithTool, natsServer, uniqueName } from '../helpers/interop-tools.ts';

describeWithTool(
  'cluster: the sessions of a node that dies are adopted by a surviving node',
  natsServer,
  () => {
    it('offline session on C, C SIGKILLed with its data dir: what is published after it is forgotten reaches the client back on B', async (t) => {
      const nats = await startNats(t);
      // a and b sort before c: the first live node by name (a) adopts c's sessions.
      const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((n) => startNode(t, nats, `orphan-${n}`)));
      const id = uniqueName('orphan');
      const first = persistentMosquittoSub(t, c!, id, 1, ['-E']);
      assert.equal((await first.exited).code, 0, first.report());

      // A SUBACK does not wait for the journal: the session is in it a commit window later.
      await until(
        async () => (await metric(c!, 'pubsub_cluster_journal_messages_total')) >= 1,
        'C journaled the session',
      );
      await c!.child.kill();
      rmSync(c!.dataDir, { recursive: true, force: true });
      await until(
        async () => !(await b!.api('/cluster')).body.result.nodes.some((n) => n.name === 'orphan-c'),
        'B forgets C',
      );
      await until(
        () => metric(a!, 'pubsub_cluster_orphan_sessions_adopted_total').then((n) => n >= 1),
        () => `A adopts the session of C\n${a!.child.lines.slice(-10).join('\n')}`,
        20_000,
      );

      // Its filter reaches B a moment after the adoption (as a SUBACK's does): then B routes to A.
      await until(
        async () =>
          (await b!.api('/cluster')).body.result.nodes.some((n) => n.name === 'orphan-a' && n.filters >= 1),
        "B knows A's interest in the adopted session's filter",
      );
      // Published on B after C is gone: queued in the adopted session on A (B's PUBACK waits for A).
      const pub = await mqtt.connectAsync(b!.urls.mqtt!, { protocolVersion: 5, reconnectPeriod: 0 });
      t.after(() => pub.endAsync(true));
      for (let i = 0; i < 20; i++) await pub.publishAsync(`${id}/x`, `after-${i}`, { qos: 1 });

      const back = persistentMosquittoSub(t, b!, id, 1, ['-W', '30', '-C', '20', '-v']);
      await until(
        () => back.lines.length >= 20,
        () => `the 20 messages on B (${back.lines.length})`,
      );
      assert.deepEqual(
        back.lines.map((l) => l.slice(l.indexOf(' ') + 1)),
        Array.from({ length: 20 }, (_, i) => `after-${i}`),
        'all, in order',
      );
    });
  },
);
