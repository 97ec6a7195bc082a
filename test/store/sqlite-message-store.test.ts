/**
 * The SQLite adapter runs the MessageStore contract on a real database file (reopened as a
 * restarted server would), and its own promises: group commit, nothing visible before the
 * commit, and a failed commit (disk full) reported, retried and recovered.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DatabaseSync } from 'node:sqlite';
import { after, describe, it } from 'node:test';
import { silentLogger } from '../../src/observability/index.ts';
import { openDatabase } from '../../src/store/database.ts';
import type { MessageStore, StoredMessage } from '../../src/store/message-store.ts';
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
