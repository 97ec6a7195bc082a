/**
 * Persistent sessions journaled in JetStream (issue 19, src/cluster/session-journal.ts): a node
 * that dies with its data directory loses no session. Three nats-servers (replicas 3, the
 * default on three servers), three
 * `pubsub serve` nodes; an offline persistent session on A (mosquitto_sub -c) while a publisher
 * on A has QoS 1 and QoS 2 messages acknowledged; A is SIGKILLed mid-flow and its data dir
 * removed; the client comes back on B: every acknowledged message arrives, no QoS 2 one twice.
 * Again with one of the three nats-servers SIGKILLed at the same moment, and with the publishers
 * on C (their acknowledgements wait for A to hold the messages: src/cluster/delivery-confirms.ts).
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { it, type TestContext } from 'node:test';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import mqtt from 'mqtt';
import { spawnChild, until } from '../helpers/child-process.ts';
import {
  freePort,
  metric,
  type Node,
  persistentMosquittoSub,
  startNatsCluster,
  startNode,
} from '../helpers/cluster.ts';
import { describeWithTool, natsServer, uniqueName } from '../helpers/interop-tools.ts';
import { startServe } from '../helpers/pubsub-process.ts';

async function crash(t: TestContext, killNats: boolean, publishOnC = false): Promise<void> {
  const { members, urls } = await startNatsCluster(t, 3);
  const [a, b, c] = await Promise.all(
    ['a', 'b', 'c'].map((n) =>
      // No --cluster-replicas: three NATS servers make it 3.
      startNode(t, { url: urls }, `journal-${n}`, ['--max-queued-messages', '100000']),
    ),
  );
  const id = uniqueName('durable');
  const sub = (node: Node, more: string[]) => persistentMosquittoSub(t, node, id, 2, more);
  const first = sub(a!, ['-E']);
  assert.equal((await first.exited).code, 0, first.report());
  const nc = await connect({ servers: urls.split(',') });
  const replicas = (await (await jetstreamManager(nc)).streams.info('PUBSUB_SESSIONS')).config.num_replicas;
  await nc.close();
  assert.equal(replicas, 3, 'the journal made with three replicas on three NATS servers (the default)');

  // Publishers on A (or C), QoS 1 and QoS 2 at once; what they acknowledged is what must arrive.
  const acked: string[] = [];
  const publishers = await Promise.all(
    [1, 2].map((qos) =>
      mqtt.connectAsync((publishOnC ? c! : a!).urls.mqtt!, {
        protocolVersion: 5,
        reconnectPeriod: 0,
        clientId: `${id}-p${qos}`,
      }),
    ),
  );
  for (const p of publishers) p.on('error', () => {});
  let running = true;
  const flows = publishers.map(async (pub, i) => {
    const qos = (i + 1) as 1 | 2;
    for (let n = 0; running; n++) {
      const batch: Promise<void>[] = [];
      for (let k = 0; k < 20; k++) {
        const payload = `q${qos}-${n * 20 + k}`;
        batch.push(
          pub.publishAsync(`${id}/x`, payload, { qos }).then(
            () => void acked.push(payload),
            () => {},
          ),
        );
      }
      await Promise.race([Promise.all(batch), new Promise((resolve) => setTimeout(resolve, 1000))]);
    }
  });
  await until(
    () => acked.length >= 2000,
    () => `2,000 acknowledged before the crash (${acked.length})`,
  );
  // SIGKILL while acknowledgements flow: no goodbye, no clean-up; the data dir goes with it.
  await Promise.all([a!.child.kill(), killNats ? members[0]!.kill() : undefined]);
  running = false;
  const ackedAtCrash = [...acked];
  rmSync(a!.dataDir, { recursive: true, force: true });
  for (const p of publishers) p.end(true);
  await Promise.all(flows);

  const back = sub(b!, ['-W', '60', '-v']);
  const arrived = () => back.lines.map((l) => l.slice(l.indexOf(' ') + 1));
  await until(
    () => {
      const got = new Set(arrived());
      return ackedAtCrash.every((p) => got.has(p));
    },
    () => {
      const got = new Set(arrived());
      return `every acknowledged message on B (${ackedAtCrash.filter((p) => !got.has(p)).length} of ${ackedAtCrash.length} missing)\n${b!.child.lines
        .filter((l) => /journal|session|cluster/.test(l))
        .slice(-15)
        .join('\n')}`;
    },
    40_000,
  );
  await new Promise((resolve) => setTimeout(resolve, 500)); // a second copy would be here by now
  const seen = new Map<string, number>();
  for (const p of arrived()) seen.set(p, (seen.get(p) ?? 0) + 1);
  const twice = [...seen].filter(([p, n]) => p.startsWith('q2-') && n > 1);
  assert.deepEqual(twice, [], 'no QoS 2 message twice');
  // Read from the journal by B: adopted once A was forgotten (B sorts first), or for the CONNECT.
  const fromJournal =
    (await metric(b!, 'pubsub_cluster_sessions_recovered_total')) +
    (await metric(b!, 'pubsub_cluster_orphan_sessions_adopted_total'));
  assert.ok(fromJournal >= 1, 'B read it from the journal');
}

describeWithTool(
  'cluster: a node that dies with its data dir loses no acknowledged message (sessions journaled in JetStream)',
  natsServer,
  () => {
    it('SIGKILL of the node holding an offline session while QoS 1/2 are acknowledged, data dir removed: all on another node, QoS 2 once', async (t) => {
      await crash(t, false);
    });

    it('the same with one of the three nats-servers SIGKILLed at the same moment (replicas 3)', async (t) => {
      await crash(t, true);
    });

    it('the same with the publishers on C: what C acknowledged, A held (C waited for it), all on B', async (t) => {
      await crash(t, false, true);
    });
  },
);

describeWithTool(
  'cluster: without JetStream there is no journal, and nothing waits for one',
  natsServer,
  () => {
    it('NATS without -js: a QoS 1 message to a persistent session is acknowledged (durable on the node)', async (t) => {
      const port = await freePort();
      const nats = spawnChild(t, 'sh', ['-c', `exec nats-server -a 127.0.0.1 -p ${port} 2>&1`]);
      await nats.waitForLine((l) => /Server is ready/.test(l), 'nats-server ready');
      const node = await startServe(t, {
        args: ['--cluster', `nats://127.0.0.1:${port}`, '--node-name', 'no-js'],
      });
      await until(
        () => node.child.lines.some((l) => l.includes('cluster_journal_unavailable')),
        'the node says it has no journal',
      );
      const id = uniqueName('nojs');
      const sub = await mqtt.connectAsync(node.urls.mqtt!, {
        protocolVersion: 5,
        clientId: id,
        clean: false,
        reconnectPeriod: 0,
        properties: { sessionExpiryInterval: 60 },
      });
      t.after(() => sub.endAsync(true));
      await sub.subscribeAsync(`${id}/#`, { qos: 1 });
      await sub.endAsync(); // offline: the message is queued (written) for it
      const pub = await mqtt.connectAsync(node.urls.mqtt!, { protocolVersion: 5, reconnectPeriod: 0 });
      t.after(() => pub.endAsync(true));
      const acked = await Promise.race([
        pub.publishAsync(`${id}/x`, 'kept', { qos: 1 }).then(() => true),
        new Promise((resolve) => setTimeout(() => resolve(false), 5000)),
      ]);
      assert.equal(acked, true, 'PUBACK within 5 s');
    });
  },
);
