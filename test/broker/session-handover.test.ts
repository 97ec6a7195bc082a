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
import { Message } from '../../src/router/index.ts';
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
  const leaving = broker.handOverSession(id, 'node-b');
  assert.ok(leaving !== undefined);
  assert.deepEqual(leaving.relay.end(), [], 'nothing was routed to it since');
  const stored = leaving.session;
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

it('a moved session gets the tail its old broker relayed, then what it held, each message once and in order', async (t) => {
  const from = await startServer();
  t.after(() => from.close());
  const to = await startServer();
  t.after(() => to.close());
  const id = 'tail-dev';
  const dev = RawClient.memory(from.server, 5);
  await dev.connect({ clientId: id, clean: false, properties: { sessionExpiryInterval: 600 } });
  dev.send({
    type: 'subscribe',
    packetId: 1,
    subscriptions: [
      { topicFilter: 't/#', qos: 2, noLocal: false, retainAsPublished: false, retainHandling: 0 },
    ],
  });
  await dev.expect('suback');
  dev.destroy();
  await until(() => from.server.defaultBroker.sessions.get(id)?.link === undefined, 'detached');
  const message = (n: number, serial: number): Message => {
    const m = new Message({ topic: 't/x', payload: Buffer.from(`m${n}`), qos: 2, retain: false });
    m.origin = serial === 0 ? 0 : 7;
    m.serial = serial;
    return m;
  };
  const leaving = from.server.defaultBroker.handOverSession(id, 'node-b');
  assert.ok(leaving !== undefined);
  assert.deepEqual([...leaving.relay.filters], ['t/#']);
  // Routed on the old broker after the session left: the relay keeps them, in order.
  for (const [n, serial] of [
    [0, 0],
    [1, 11],
    [2, 12],
  ] as const)
    from.server.defaultBroker.publish(message(n, serial));
  to.server.defaultBroker.adoptSession(leaving.session, 'move-1');
  const back = RawClient.memory(to.server, 5);
  const ack = await back.connect({ clientId: id, clean: false, properties: { sessionExpiryInterval: 600 } });
  assert.equal(ack.sessionPresent, true);
  // Reaching the new broker directly meanwhile: m2 again (the same identity), then m3 and m4.
  for (const [n, serial] of [
    [2, 12],
    [3, 13],
    [4, 0],
  ] as const)
    to.server.defaultBroker.publish(message(n, serial));
  assert.equal(to.server.defaultBroker.endMove(id, 'another move', []), undefined, 'not this move');
  const tail = leaving.relay.end();
  assert.deepEqual(
    tail.map((m) => m.payload.toString()),
    ['m0', 'm1', 'm2'],
  );
  assert.deepEqual(to.server.defaultBroker.endMove(id, 'move-1', tail), { copies: 1, dropped: 0 });
  const got: string[] = [];
  const ids: number[] = [];
  for (let i = 0; i < 5; i++) {
    const p = await back.expect('publish');
    got.push(p.payload.toString());
    ids.push(p.packetId!);
    back.send({ type: 'pubrec', packetId: p.packetId!, reasonCode: 0 });
  }
  assert.deepEqual(got, ['m0', 'm1', 'm2', 'm3', 'm4']);
  for (const packetId of ids) {
    assert.equal((await back.next()).type, 'pubrel');
    back.send({ type: 'pubcomp', packetId, reasonCode: 0 });
  }
  await back.expectSilence(200);
  back.destroy();
});
