/**
 * Start-up load of durable state: fills a fresh data directory with N retained messages and
 * M persistent sessions (each with two subscriptions, one of them with an identifier, and Q
 * queued QoS 1 messages), then times a server start on it (database open, migrations, load of
 * every broker's retained messages and sessions, index rebuild). docs/persistence.md quotes it.
 *
 *   node bench/store-load.ts [--retained 100000] [--sessions 10000] [--queued 5]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { configWith } from '../src/config.ts';
import { silentLogger } from '../src/observability/index.ts';
import { Server } from '../src/server.ts';
import { openDatabase, SqliteMessageStore } from '../src/store/index.ts';

const { values } = parseArgs({
  options: {
    retained: { type: 'string', default: '100000' },
    sessions: { type: 'string', default: '10000' },
    queued: { type: 'string', default: '5' },
  },
});
const retainedCount = Number(values.retained);
const sessionCount = Number(values.sessions);
const queuedPerSession = Number(values.queued);

const dir = mkdtempSync(join(tmpdir(), 'pubsub-load-'));
try {
  const config = configWith({ dataDir: dir, port: 0, wsPort: -1, httpPort: -1 });
  const bootstrap = new Server(config);
  const brokerId = bootstrap.defaultBroker.id;
  await bootstrap.close();

  const db = openDatabase(dir);
  const store = new SqliteMessageStore(db, { batchMs: 0, logger: silentLogger() });
  const now = Date.now();
  const fillStart = performance.now();
  const payload = Buffer.alloc(64, 'x');
  for (let i = 0; i < retainedCount; i++) {
    store.putRetained(brokerId, {
      topic: `sensors/${i % 100}/${Math.floor(i / 100)}/state`,
      payload,
      qos: 1,
      retain: true,
      properties: i % 10 === 0 ? { contentType: 'application/json' } : undefined,
      senderId: `device-${i}`,
      receivedAt: now,
      expiresAt: undefined,
    });
  }
  for (let s = 0; s < sessionCount; s++) {
    const clientId = `client-${s}`;
    store.putSession(brokerId, {
      clientId,
      expiryInterval: 86_400,
      expiresAt: now + 86_400_000,
      will: undefined,
    });
    store.putSubscription(brokerId, clientId, {
      topicFilter: `commands/${s}/#`,
      qos: 1,
      noLocal: false,
      retainAsPublished: false,
      retainHandling: 0,
      subscriptionId: s + 1,
    });
    store.putSubscription(brokerId, clientId, {
      topicFilter: `broadcast/+`,
      qos: 2,
      noLocal: true,
      retainAsPublished: false,
      retainHandling: 1,
      subscriptionId: undefined,
    });
    for (let q = 0; q < queuedPerSession; q++) {
      store.putOutbound(brokerId, clientId, {
        seq: store.nextSeq(),
        state: 'queued',
        packetId: 0,
        qos: 1,
        retain: false,
        subscriptionIds: [s + 1],
        message: {
          topic: `commands/${s}/${q}`,
          payload,
          qos: 1,
          retain: false,
          properties: undefined,
          senderId: 'backend',
          receivedAt: now,
          expiresAt: undefined,
        },
      });
    }
  }
  store.close();
  db.close();
  const fillMs = performance.now() - fillStart;

  const loadStart = performance.now();
  const server = new Server(config);
  const loadMs = performance.now() - loadStart;
  const broker = server.defaultBroker;
  let queued = 0;
  for (const session of broker.sessions.values()) queued += session.queuedCount;
  const rss = process.memoryUsage().rss;
  await server.close();
  console.log(
    JSON.stringify({
      retained: broker.retained.size,
      sessions: broker.sessions.size,
      subscriptions: broker.index.size,
      queued,
      fillMs: Math.round(fillMs),
      loadMs: Math.round(loadMs),
      rssMiB: Math.round(rss / 2 ** 20),
    }),
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
