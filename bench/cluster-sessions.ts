/**
 * `node bench/cluster-sessions.ts [--sessions N] [--concurrency C]` (needs nats-server): what
 * offline persistent sessions cost a node, one node without --cluster against a cluster node
 * whose sessions are journaled in JetStream (issue 19: hold 100k persistent sessions per node,
 * no JetStream consumer per session or subscription).
 *
 * For each set-up a fresh `pubsub serve` on a new SQLite data directory (the cluster node on a
 * fresh nats-server with JetStream): after 2 s idle its RssAnon is read (/proc/<pid>/status);
 * then N MQTT 3.1.1 clients (default 100,000, C at a time, default 200) each CONNECT with clean
 * session 0, SUBSCRIBE to one filter of their own at QoS 1 and DISCONNECT, leaving N offline
 * persistent sessions; 3 s later RssAnon is read again. Reported: sessions made per second,
 * RssAnon per offline session, and for the cluster node the journal stream's messages and bytes
 * and its consumers (none is expected: sessions cost a subject each, not a consumer).
 */
import { readFileSync, rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { RawClient } from '../test/helpers/raw-client.ts';
import {
  type BrokerHandle,
  killAllChildren,
  makeTempDir,
  removeTempDir,
  startBroker,
  stopChild,
} from './brokers.ts';
import { startNats } from './nats.ts';

const { values } = parseArgs({
  options: {
    sessions: { type: 'string', default: '100000' },
    concurrency: { type: 'string', default: '200' },
  },
});
const N = Number(values.sessions);
const C = Number(values.concurrency);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const anonKb = (pid: number): number =>
  Number(/^RssAnon:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'))?.[1]);

async function makeSessions(port: number, tag: string): Promise<number> {
  const started = performance.now();
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < N; i = next++) {
      const c = await RawClient.tcp(port, 4);
      await c.connect({ clientId: `${tag}-${i}`, clean: false });
      c.send({
        type: 'subscribe',
        packetId: 1,
        subscriptions: [
          { topicFilter: `s/${i}`, qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 },
        ],
      });
      await c.expect('suback', 30_000);
      c.send({ type: 'disconnect', reasonCode: 0 });
      c.end();
    }
  };
  await Promise.all(Array.from({ length: C }, worker));
  return N / ((performance.now() - started) / 1000);
}

interface Row {
  setup: string;
  idleMb: number;
  perSecond: number;
  perSessionBytes: number;
  journal?: { messages: number; bytes: number; consumers: number };
}

async function measure(setup: 'single' | 'cluster', natsUrl: string): Promise<Row> {
  const dataDir = makeTempDir('bench-sessions-');
  let broker: BrokerHandle | undefined;
  try {
    broker = await startBroker('pubsub', {
      noDelay: true,
      dataDir,
      serveArgs: [
        '--http-port',
        '0',
        ...(setup === 'cluster' ? ['--cluster', natsUrl, '--node-name', 'sessions-bench'] : []),
      ],
    });
    if (setup === 'cluster') {
      const deadline = Date.now() + 15_000;
      while ((await fetch(`${broker.apiUrl}/readyz`).catch(() => undefined))?.status !== 200) {
        if (Date.now() > deadline) throw new Error(`cluster link not up\n${broker.output()}`);
        await sleep(50);
      }
    }
    await sleep(2000);
    const idle = anonKb(broker.pid);
    const port = Number(new URL(broker.tcpUrl).port);
    const perSecond = await makeSessions(port, setup);
    await sleep(3000);
    const after = anonKb(broker.pid);
    const row: Row = {
      setup,
      idleMb: idle / 1024,
      perSecond,
      perSessionBytes: ((after - idle) * 1024) / N,
    };
    if (setup === 'cluster') {
      const nc = await connect({ servers: natsUrl });
      const jsm = await jetstreamManager(nc);
      const info = await jsm.streams.info('PUBSUB_SESSIONS');
      row.journal = {
        messages: info.state.messages,
        bytes: info.state.bytes,
        consumers: info.state.consumer_count,
      };
      await nc.close();
    }
    return row;
  } finally {
    await broker?.stop();
    removeTempDir(dataDir);
  }
}

const nats = await startNats();
try {
  const rows = [await measure('single', nats.url), await measure('cluster', nats.url)];
  console.log(
    `${N} offline persistent sessions (MQTT 3.1.1, clean session 0, one QoS 1 filter each), ${C} clients at a time; RssAnon of the broker process.\n`,
  );
  console.log(
    '| set-up | idle RssAnon | sessions made /s | RssAnon per offline session | journal stream | journal consumers |',
  );
  console.log('|---|---|---|---|---|---|');
  for (const r of rows)
    console.log(
      `| ${r.setup === 'single' ? 'one node (SQLite)' : 'cluster node (SQLite + journal)'} | ${r.idleMb.toFixed(1)} MB | ${Math.round(r.perSecond)} | ${(r.perSessionBytes / 1024).toFixed(2)} KB | ${r.journal ? `${r.journal.messages} messages, ${(r.journal.bytes / 1024 / 1024).toFixed(1)} MB` : '-'} | ${r.journal?.consumers ?? '-'} |`,
    );
} finally {
  await stopChild(nats.child);
  rmSync(nats.storeDir, { recursive: true, force: true });
  killAllChildren();
}
