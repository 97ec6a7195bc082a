/**
 * Bounds and storage failures of durable state: per-broker retained count/bytes and the
 * per-session queue (drop newest or oldest), every drop counted; and a message store whose
 * commits fail (disk full, simulated with SQLite's max_page_count) never yields a success ack:
 * v5 publishers get PUBACK/PUBREC 0x80, v3 publishers are disconnected, until commits succeed.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { silentLogger } from '../../src/observability/index.ts';
import type { Packet, PubackPacket } from '../../src/protocol/index.ts';
import { openDatabase, SqliteMessageStore } from '../../src/store/index.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

async function serve(
  t: TestContext,
  overrides: Record<string, unknown>,
  store?: SqliteMessageStore,
): Promise<TestServer> {
  const ts = await startServer(overrides, store ? { messageStore: store, logger: silentLogger() } : {});
  t.after(() => ts.close());
  return ts;
}

const publish = (
  topic: string,
  payload: string,
  qos: 0 | 1 | 2,
  packetId?: number,
  retain = false,
): Packet => ({
  type: 'publish',
  topic,
  payload: Buffer.from(payload),
  qos,
  retain,
  dup: false,
  ...(packetId === undefined ? {} : { packetId }),
});

const subscribe = (topicFilter: string, qos: 0 | 1 | 2): Packet => ({
  type: 'subscribe',
  packetId: 1,
  subscriptions: [{ topicFilter, qos, noLocal: false, retainAsPublished: false, retainHandling: 0 }],
});

/** A persistent v5 session subscribed to `filter`, then disconnected. */
async function offlineSubscriber(ts: TestServer, clientId: string, filter: string): Promise<void> {
  const c = RawClient.memory(ts.server, 5);
  await c.connect({ clientId, clean: false, properties: { sessionExpiryInterval: 600 } });
  c.send(subscribe(filter, 1));
  await c.expect('suback');
  c.send({ type: 'disconnect', reasonCode: 0 });
  await c.closed();
}

async function drain(ts: TestServer, clientId: string, count: number): Promise<string[]> {
  const c = RawClient.memory(ts.server, 5);
  await c.connect({ clientId, clean: false, properties: { sessionExpiryInterval: 600 } });
  const got: string[] = [];
  for (let i = 0; i < count; i++) {
    const p = await c.expect('publish');
    got.push(`${p.payload}`);
    c.send({ type: 'puback', packetId: p.packetId!, reasonCode: 0 });
  }
  await c.expectSilence();
  c.destroy();
  return got;
}

describe('bounds of durable state', () => {
  it('retained messages beyond the broker’s count are delivered, not retained, and counted', async (t) => {
    const ts = await serve(t, { maxRetainedMessages: 2 });
    const pub = RawClient.memory(ts.server, 4);
    await pub.connect();
    for (const topic of ['r/1', 'r/2', 'r/3']) {
      pub.send(publish(topic, topic, 1, 1, true));
      await pub.expect('puback');
    }
    pub.send(publish('r/1', 'replaced', 1, 1, true)); // a replacement fits the count
    await pub.expect('puback');
    const broker = ts.server.defaultBroker;
    assert.equal(broker.retained.size, 2);
    assert.equal(broker.stats.droppedRetainedFull, 1);
    assert.equal(`${broker.retained.get('r/1')?.payload}`, 'replaced');
    assert.equal(broker.retained.get('r/3'), undefined);
  });

  it('retained bytes (topic and payload) are bounded per broker', async (t) => {
    const ts = await serve(t, { maxRetainedBytes: 16 });
    const pub = RawClient.memory(ts.server, 4);
    await pub.connect();
    pub.send(publish('b/1', '12345', 0, undefined, true)); // 3 + 5 bytes
    pub.send(publish('b/2', '12345', 0, undefined, true));
    pub.send(publish('b/3', '1', 1, 1, true)); // 4 more: over 16
    await pub.expect('puback');
    const broker = ts.server.defaultBroker;
    assert.deepEqual(
      [broker.retained.size, broker.retained.bytes, broker.stats.droppedRetainedFull],
      [2, 16, 1],
    );
  });

  for (const [policy, expected] of [
    ['drop-newest', ['m0', 'm1', 'm2']],
    ['drop-oldest', ['m2', 'm3', 'm4']],
  ] as const) {
    it(`a full session queue with queueOverflow ${policy} keeps ${expected.join(', ')} and counts 2 drops`, async (t) => {
      const ts = await serve(t, { maxQueuedMessages: 3, queueOverflow: policy });
      await offlineSubscriber(ts, 'slow', 'q');
      const pub = RawClient.memory(ts.server, 4);
      await pub.connect();
      for (let i = 0; i < 5; i++) {
        pub.send(publish('q', `m${i}`, 1, i + 1));
        await pub.expect('puback');
      }
      assert.equal(ts.server.defaultBroker.stats.droppedQueueFull, 2);
      assert.deepEqual(await drain(ts, 'slow', 3), expected);
    });
  }
});

describe('a message store whose commits fail', () => {
  it('never acks what it could not store, and acks again once commits succeed', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'pubsub-full-'));
    const db = openDatabase(dir);
    t.after(() => {
      if (db.isOpen) db.close();
      rmSync(dir, { recursive: true, force: true });
    });
    const store = new SqliteMessageStore(db, { batchMs: 0, logger: silentLogger() });
    const ts = await serve(t, {}, store);
    await offlineSubscriber(ts, 'keeper', 'full/#');
    await new Promise<void>((resolve) => store.afterCommit(() => resolve()));
    const pages = Number((db.prepare('PRAGMA page_count').get() as { page_count: number }).page_count);
    db.exec(`PRAGMA max_page_count = ${pages}`); // the disk is full

    const v5 = RawClient.memory(ts.server, 5);
    await v5.connect();
    v5.send(publish('full/a', 'x'.repeat(200_000), 1, 1));
    const failed = (await v5.next()) as PubackPacket;
    assert.deepEqual([failed.type, failed.reasonCode], ['puback', 0x80], 'the commit failed: no success ack');
    assert.ok(store.failed);
    v5.send(publish('full/b', 'small', 2, 2));
    const refused = (await v5.next()) as PubackPacket;
    assert.deepEqual([refused.type, refused.reasonCode], ['pubrec', 0x80], 'refused while the store fails');
    v5.send(publish('full/c', 'qos 0 still flows', 0));

    const v3 = RawClient.memory(ts.server, 4);
    await v3.connect();
    v3.send(publish('full/d', 'v3', 1, 1));
    await v3.closed(); // v3 has no negative PUBACK: the connection is closed instead

    db.exec('PRAGMA max_page_count = 1073741823'); // space again
    store.flush();
    assert.equal(store.failed, undefined);
    v5.send(publish('full/e', 'stored', 1, 3));
    const ok = (await v5.next()) as PubackPacket;
    assert.deepEqual([ok.type, ok.packetId, ok.reasonCode], ['puback', 3, 0]);
  });
});
