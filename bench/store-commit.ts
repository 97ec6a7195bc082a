/**
 * `node bench/store-commit.ts`: what the SQLite message store's group commit costs per QoS 1
 * delivery to a persistent session, in the persistent fan-in pattern (docs/performance.md):
 * each commit writes a batch of new deliveries (queued, then sent: one row each) and deletes
 * the previous batch's, acknowledged after their commit. The store runs on the event loop, so
 * its CPU per message bounds the persistent rate.
 *
 * A fresh data directory (WAL, synchronous=NORMAL, as the server opens it); `--batch` deliveries
 * per commit (500: 5 ms of --store-batch-ms at 100k msgs/s), 64-byte payloads (`--size`). Prints
 * CPU µs per delivery (this thread: node:sqlite runs on it), the best of `--reps` (3) windows
 * of `--ms` (1000). `--baseline DIR` runs another checkout's store too, interleaved.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_DIR } from './brokers.ts';
import { fmt } from './variants.ts';

const { values: opts } = parseArgs({
  options: {
    batch: { type: 'string', default: '500' },
    size: { type: 'string', default: '64' },
    ms: { type: 'string', default: '1000' },
    reps: { type: 'string', default: '3' },
    baseline: { type: 'string' },
  },
});
const BATCH = Number(opts.batch);
const SIZE = Number(opts.size);
const WINDOW_MS = Number(opts.ms);
const REPS = Number(opts.reps);

type StoreModule = typeof import('../src/store/index.ts');
interface Code {
  label: string;
  store: StoreModule;
  observability: typeof import('../src/observability/index.ts');
}

const load = async (label: string, dir: string): Promise<Code> => ({
  label,
  store: await import(join(dir, 'src/store/index.ts')),
  observability: await import(join(dir, 'src/observability/index.ts')),
});

const codes: Code[] = [
  ...(opts.baseline === undefined ? [] : [await load('before', opts.baseline)]),
  await load(opts.baseline === undefined ? 'this tree' : 'after', REPO_DIR),
];

const payload = Buffer.alloc(SIZE, 0x78);

/** CPU µs of this thread per delivery (put, sent, deleted), best of REPS windows. */
function measure(code: Code): number {
  const dir = mkdtempSync(join(tmpdir(), 'pubsub-commit-'));
  try {
    const db = code.store.openDatabase(dir);
    const store = new code.store.SqliteMessageStore(db, {
      batchMs: 1000,
      logger: code.observability.silentLogger(),
    });
    let previous: number[] = [];
    let packetId = 0;
    const round = (): void => {
      for (const seq of previous) store.deleteOutbound('broker', 'subscriber', seq);
      const next: number[] = [];
      for (let i = 0; i < BATCH; i++) {
        const seq = store.nextSeq();
        const message = {
          topic: `bench/fanin/${i % 10}`,
          payload,
          qos: 1 as const,
          retain: false,
          properties: undefined,
          senderId: `pub-${i % 10}`,
          receivedAt: Date.now(),
          expiresAt: undefined,
        };
        store.putOutbound('broker', 'subscriber', {
          seq,
          state: 'queued',
          packetId: 0,
          qos: 1,
          retain: false,
          subscriptionIds: undefined,
          message,
        });
        packetId = (packetId % 65535) + 1;
        store.setOutboundState('broker', 'subscriber', seq, 'sent', packetId);
        next.push(seq);
      }
      store.flush();
      if (store.failed !== undefined) throw store.failed;
      previous = next;
    };
    const window = (ms: number): number => {
      let rounds = 0;
      const cpu = process.threadCpuUsage();
      const end = performance.now() + ms;
      while (performance.now() < end) {
        round();
        rounds++;
      }
      const used = process.threadCpuUsage(cpu);
      return (used.user + used.system) / (rounds * BATCH);
    };
    window(200);
    let best = Number.POSITIVE_INFINITY;
    for (let rep = 0; rep < REPS; rep++) best = Math.min(best, window(WINDOW_MS));
    store.close();
    db.close();
    return best;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const rows = ['| code | CPU µs per delivery |', '|---|---|'];
for (let rep = 0; rep < 2; rep++)
  for (const code of codes) {
    rows.push(`| ${code.label} | ${fmt(measure(code), 2)} |`);
    process.stderr.write(`${rows.at(-1)}\n`);
  }
console.log(
  [
    `# Message store commit cost, ${new Date().toISOString()}`,
    '',
    `${BATCH} deliveries per commit, ${SIZE}-byte payloads; each delivery put (queued), sent, and deleted in the next commit; best of ${REPS} windows of ${WINDOW_MS} ms, each code twice.`,
    '',
    ...rows,
    '',
  ].join('\n'),
);
