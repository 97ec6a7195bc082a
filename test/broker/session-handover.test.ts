/**
 * Broker.handOverSession / adoptSession, the two ends of a session moving between cluster nodes
 * (src/cluster/session-handover.ts), on two single servers with SQLite stores: the session leaves
 * the first whole (store included, no will published), and the second holds it in its store, its
 * deliveries in their order under its own numbers, so that it also survives a restart there.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { until } from '../helpers/child-process.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { startServer } from '../helpers/server.ts';

it('a session handed over from one broker is adopted by another, written to its store in order, and resumed after its restart', async (t) => {
  const dirs = [
    mkdtempSync(join(tmpdir(), 'pubsub-handover-')),
    mkdtempSync(join(tmpdir(), 'pubsub-handover-')),
  ];
  t.after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  const from = await startServer({ dataDir: dirs[0]! });
  t.after(() => from.close());
  const id = 'handover-dev';
  const dev = RawClient.memory(from.server, 5);
  const will = {
    topic: 'w',
    payload: Buffer.from('gone'),
    qos: 1 as const,
    retain: false,
    properties: { willDelayInterval: 60 },
  };
  await dev.connect({ clientId: id, clean: false, properties: { sessionExpiryInterval: 600 }, will });
  dev.send({
    type: 'subscribe',
    packetId: 1,
    subscriptions: [
      { topicFilter: 'h/#', qos: 2, noLocal: false, retainAsPublished: false, retainHandling: 0 },
    ],
  });
  await dev.expect('suback');
  dev.destroy();
  const pub = RawClient.memory(from.server, 5);
  await pub.connect({ clientId: 'handover-pub' });
  for (let i = 0; i < 5; i++) {
    pub.send({
      type: 'publish',
      topic: 'h/x',
      payload: Buffer.from(`m${i}`),
      qos: 1,
      retain: false,
      dup: false,
      packetId: i + 1,
    });
    await pub.expect('puback');
  }
  const broker = from.server.defaultBroker;
  await new Promise((resolve) => setTimeout(resolve, 50)); // the store's commit window
  const stored = broker.handOverSession(id, 'node-b');
  assert.ok(stored !== undefined);
  assert.equal(broker.sessions.has(id), false);
  assert.deepEqual(
    stored.outbound.map((o) => o.message.payload.toString()),
    ['m0', 'm1', 'm2', 'm3', 'm4'],
  );
  assert.equal(stored.will?.message.payload.toString(), 'gone', 'the waiting will goes with it');
  await until(
    () => !broker.store.load(broker.id).sessions.some((s) => s.clientId === id),
    'nothing left in the first store',
  );

  let to = await startServer({ dataDir: dirs[1]! });
  to.server.defaultBroker.adoptSession(stored);
  await new Promise((resolve) => setTimeout(resolve, 50));
  await to.close();
  to = await startServer({ dataDir: dirs[1]! }); // restarted: the adopted session is in its store
  t.after(() => to.close());
  const back = RawClient.memory(to.server, 5);
  const ack = await back.connect({ clientId: id, clean: false, properties: { sessionExpiryInterval: 600 } });
  assert.equal(ack.sessionPresent, true);
  const got: string[] = [];
  for (let i = 0; i < 5; i++) {
    const p = await back.expect('publish');
    got.push(p.payload.toString());
    back.send({ type: 'puback', packetId: p.packetId!, reasonCode: 0 });
  }
  assert.deepEqual(got, ['m0', 'm1', 'm2', 'm3', 'm4']);
  back.send({ type: 'disconnect', reasonCode: 0, properties: { sessionExpiryInterval: 0 } });
});
