/**
 * The SQLite adapter runs the MessageStore contract on a real database file (reopened as a
 * restarted server would), and its own promises: group commit, nothing visible before the
 * commit, and a failed commit (disk full) reported, retried and recovered. Queued deliveries
 * are written by multi-row INSERTs and acknowledged ones deleted by ranges of consecutive
 * sequence numbers (issue 22): both write exactly the rows asked, in the batch's order.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DatabaseSync } from 'node:sqlite';
import { after, describe, it } from 'node:test';
import { silentLogger } from '../../src/observability/index.ts';
import { openDatabase } from '../../src/store/database.ts';
import type { MessageStore, StoredMessage, StoredOutbound } from '../../src/store/message-store.ts';
import { SqliteMessageStore } from '../../src/store/sqlite-message-store.ts';
import { messageStoreContract } from './message-store.contract.ts';

const dirs: string[] = [];
const databases = new Map<MessageStore, { dir: string; db: DatabaseSync }>();
after(() => {
  for (const { db } of databases.values()) if (db.isOpen) db.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function openIn(dir: string, batchMs = 2): SqliteMessageStore {
  const db = openDatabase(dir);
  const store = new SqliteMessageStore(db, { batchMs, logger: silentLogger() });
  databases.set(store, { dir, db });
  return store;
}

function freshDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'pubsub-store-'));
  dirs.push(dir);
  return dir;
}

messageStoreContract('sqlite', {
  open: () => openIn(freshDir()),
  // A restart without flushing: only what was committed is seen.
  reopen: (store) => {
    const { dir, db } = databases.get(store)!;
    db.close();
    return openIn(dir);
  },
});

const retained = (topic: string, payload: string): StoredMessage => ({
  topic,
  payload: Buffer.from(payload),
  qos: 1,
  retain: true,
  properties: undefined,
  senderId: undefined,
  receivedAt: Date.now(),
  expiresAt: undefined,
});

describe('SQLite message store', () => {
  it('commits a burst of writes as one transaction after the batch window, not before', async () => {
    const dir = freshDir();
    const store = openIn(dir, 20);
    const reader = openDatabase(dir);
    after(() => reader.close());
    const count = (): number =>
      Number((reader.prepare('SELECT count(*) AS n FROM retained').get() as { n: number }).n);
    for (let i = 0; i < 500; i++) store.putRetained('b', retained(`t/${i}`, `v${i}`));
    assert.equal(store.pending, true);
    assert.equal(count(), 0, 'nothing is visible before the commit');
    const dataVersion = (): number =>
      Number((reader.prepare('PRAGMA data_version').get() as { data_version: number }).data_version);
    const versionBefore = dataVersion();
    await new Promise<void>((resolve) => store.afterCommit(() => resolve()));
    assert.equal(count(), 500);
    // data_version moves once per commit by another connection.
    assert.equal(dataVersion(), versionBefore + 1, 'one transaction for the whole burst');
  });

  it('a failed commit (disk full) is reported, keeps its writes, and succeeds once space returns', async () => {
    const dir = freshDir();
    const store = openIn(dir, 0);
    const { db } = databases.get(store)!;
    const pages = Number((db.prepare('PRAGMA page_count').get() as { page_count: number }).page_count);
    db.exec(`PRAGMA max_page_count = ${pages}`);
    const big = 'x'.repeat(64 * 1024);
    for (let i = 0; i < 4; i++) store.putRetained('b', retained(`big/${i}`, big));
    const error = await new Promise<Error | undefined>((resolve) => store.afterCommit(resolve));
    assert.match(String(error?.message), /full/i);
    assert.ok(store.failed, 'the store reports the failure');
    assert.equal(store.pending, true, 'the writes are kept for the retry');
    db.exec('PRAGMA max_page_count = 1073741823');
    store.flush();
    assert.equal(store.failed, undefined);
    assert.equal(store.pending, false);
    store.close();
    const { db: again } = databases.get(openIn(dir))!;
    assert.equal(Number((again.prepare('SELECT count(*) AS n FROM retained').get() as { n: number }).n), 4);
  });
});

const delivery = (seq: number, payload: string): StoredOutbound => ({
  seq,
  state: 'sent',
  packetId: (seq % 65535) + 1,
  qos: 1,
  retain: false,
  subscriptionIds: undefined,
  message: { ...retained('t/q', payload), retain: false },
});

const session = (clientId: string) => ({
  clientId,
  expiryInterval: 3600,
  expiresAt: undefined,
  will: undefined,
});

describe('SQLite message store: outbound rows in bulk (issue 22)', () => {
  const committed = (store: MessageStore) =>
    new Promise<void>((resolve, reject) => store.afterCommit((err) => (err ? reject(err) : resolve())));
  const reopen = (store: SqliteMessageStore): SqliteMessageStore => {
    const { dir, db } = databases.get(store)!;
    db.close();
    return openIn(dir);
  };
  const payloads = (store: SqliteMessageStore, client: string): string[] =>
    store
      .load('b')
      .sessions.find((s) => s.clientId === client)!
      .outbound.map((o) => `${o.message.payload}`);

  it('deletes exactly the acknowledged rows: consecutive runs, scattered ones, and a gap kept', async () => {
    const store = openIn(freshDir());
    store.putSession('b', session('c1'));
    store.putSession('b', session('c2'));
    const seqs: number[] = [];
    // 40 interleaved between two sessions, then 60 for c1 alone (more than one INSERT's rows).
    for (let i = 0; i < 100; i++) {
      const seq = store.nextSeq();
      seqs.push(seq);
      store.putOutbound('b', i < 40 && i % 2 === 1 ? 'c2' : 'c1', delivery(seq, `m${i}`));
    }
    await committed(store);
    // c2's rows (every other seq) and c1's last 60 but one, in no particular order.
    const acked = seqs.filter((_, i) => (i < 40 && i % 2 === 1) || (i >= 40 && i !== 70)).reverse();
    for (const seq of acked) store.deleteOutbound('b', 'x', seq);
    await committed(store);
    const again = reopen(store);
    assert.deepEqual(payloads(again, 'c1'), [...Array.from({ length: 20 }, (_, k) => `m${2 * k}`), 'm70']);
    assert.deepEqual(payloads(again, 'c2'), []);
  });

  it('keeps the batch order around multi-row inserts: a session deleted after its deliveries loses them', async () => {
    const store = openIn(freshDir());
    store.putSession('b', session('c1'));
    store.putSession('b', session('c2'));
    await committed(store);
    // One batch: deliveries to both, c2's session deleted and started again, more deliveries.
    for (let i = 0; i < 50; i++)
      store.putOutbound('b', i % 5 === 0 ? 'c2' : 'c1', delivery(store.nextSeq(), `a${i}`));
    store.deleteSession('b', 'c2');
    store.putSession('b', session('c2'));
    for (let i = 0; i < 3; i++) store.putOutbound('b', 'c2', delivery(store.nextSeq(), `b${i}`));
    for (let i = 0; i < 40; i++) store.putOutbound('b', 'c1', delivery(store.nextSeq(), `c${i}`));
    await committed(store);
    const again = reopen(store);
    assert.deepEqual(payloads(again, 'c2'), ['b0', 'b1', 'b2']);
    const c1 = payloads(again, 'c1');
    assert.equal(c1.length, 40 + 40);
    assert.deepEqual(c1.slice(0, 3), ['a1', 'a2', 'a3']);
    assert.equal(c1.at(-1), 'c39');
  });
});
