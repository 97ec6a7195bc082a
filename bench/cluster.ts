/**
 * The cluster's cost and growth (issue 18), ratios within one run: `node bench/cluster.ts
 * [--reps N] [--duration S] [--qos 0,1] [--parts fanin,spread,persistent] [--spread-subs N] [--profile DIR]`,
 * ~4 min with the defaults. Needs the Debian package nats-server. `--profile DIR` runs every
 * node with --cpu-prof into DIR (`<setup>-q<qos>-<node>-rep<n>.cpuprofile`, for
 * bench/profile-summary.ts). Each cross run also prints how node A batched (its /metrics).
 *
 * For QoS 0 and QoS 1, fan-in 64 B (10 publishers -> 1 subscriber, window 1000, as
 * `npm run bench`'s fanin rows), three set-ups, one after the other in each repetition:
 *   single   one `pubsub serve` without --cluster, everyone on it;
 *   local    node A of a two-node cluster, everyone on A (nothing crosses: B wants nothing);
 *   cross    publishers on node A, the subscriber on node B: every message crosses NATS.
 * Medians of the delivered msgs/s, and local/single and cross/single.
 *
 * `spread` (three nodes): fan-out 64 B, one publisher on node A, `--spread-subs` subscribers
 * (default 30) to its topic spread in turn over 1, 2 and 3 nodes (`spread1` is one node without
 * --cluster, `spread2`/`spread3` clusters of 2 and 3): aggregate deliveries/s over all the
 * subscribers, and spread2/spread1, spread3/spread1. Each message crosses NATS once per other
 * node (batched), and each node fans it out to its own subscribers.
 *
 * `persistent` (QoS 1 only): fan-in 10→1 into a subscriber with a persistent session, so every
 * delivery is written before its PUBACK: one node on SQLite (`psingle`) against node A of a
 * two-node cluster (`plocal`: SQLite plus the JetStream session journal, issue 19), and
 * plocal/psingle; and `pcross`: the publishers on node A, the persistent subscriber on node B,
 * so each PUBACK waits until B has journaled what crossed (src/cluster/delivery-confirms.ts).
 *
 * Every broker process is fresh per run; the load generator is this process (bench/load.ts).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { seriesValue } from '../test/helpers/prometheus.ts';
import {
  type BrokerHandle,
  killAllChildren,
  profiledRun,
  type StartOptions,
  startBroker,
  stopChild,
} from './brokers.ts';
import { type LoadResult, runLoad } from './load.ts';
import { startNats } from './nats.ts';

const { values } = parseArgs({
  options: {
    reps: { type: 'string', default: '3' },
    duration: { type: 'string', default: '3' },
    qos: { type: 'string', default: '0,1' },
    parts: { type: 'string', default: 'fanin,spread' },
    'spread-subs': { type: 'string', default: '30' },
    profile: { type: 'string' },
  },
});
const parts = values.parts.split(',');
const spreadSubs = Number(values['spread-subs']);
const levels = values.qos.split(',').map(Number) as (0 | 1)[];
const reps = Number(values.reps);
const durationS = Number(values.duration);

if (spawnSync('nats-server', ['--version']).status !== 0) {
  console.error('nats-server not found: apt-get install nats-server');
  process.exit(1);
}

process.on('SIGINT', () => {
  killAllChildren();
  process.exit(130);
});

let currentRep = 0;
/** --cpu-prof for the node called `name` in this repetition, when `--profile` asks for it. */
function profiling(name: string): Pick<StartOptions, 'nodeFlags' | 'outputFile'> {
  return values.profile === undefined
    ? {}
    : profiledRun({ cpu: true, gc: false, dir: values.profile }, `${name}-rep${currentRep}`);
}

async function startNode(natsUrl: string, name: string, dataDir?: string): Promise<BrokerHandle> {
  const node = await startBroker('pubsub', {
    noDelay: true,
    ...(dataDir === undefined ? {} : { dataDir }),
    serveArgs: ['--cluster', natsUrl, '--node-name', name, '--http-port', '0'],
    ...profiling(name),
  });
  const deadline = Date.now() + 15_000;
  while ((await fetch(`${node.apiUrl}/readyz`).catch(() => undefined))?.status !== 200) {
    if (Date.now() > deadline) throw new Error(`${name}: cluster link not up\n${node.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return node;
}

type Setup = 'single' | 'local' | 'cross' | 'psingle' | 'plocal' | 'pcross';
/** What every run shares. The subscriptions' interest reaches the other nodes in milliseconds; the same pause everywhere. */
const COMMON = { settleMs: 200, size: 64, window: 1000, batch: 32, durationS, warmupS: 1 } as const;
type Spread = 'spread1' | 'spread2' | 'spread3';

/** Fan-out from one publisher on the first node to subscribers spread over 1, 2 or 3 nodes. */
async function measureSpread(setup: Spread, qos: 0 | 1, natsUrl: string): Promise<LoadResult> {
  const count = Number(setup.slice(-1));
  const nodes: BrokerHandle[] = [];
  // One after the other: three processes starting at once on a busy machine can miss the
  // broker's readiness deadline.
  if (count === 1)
    nodes.push(await startBroker('pubsub', { noDelay: true, ...profiling(`${setup}-q${qos}`) }));
  else for (let i = 0; i < count; i++) nodes.push(await startNode(natsUrl, `${setup}-q${qos}-${i}`));
  try {
    return await runLoad({
      scenario: 'fanout',
      url: nodes[0]!.tcpUrl,
      subUrls: nodes.map((n) => n.tcpUrl),
      ...COMMON,
      pubs: 1,
      subs: spreadSubs,
      qos,
      brokerPid: nodes[0]!.pid,
    });
  } finally {
    for (const node of nodes) await node.stop();
  }
}

async function measure(setup: Setup, qos: 0 | 1, natsUrl: string): Promise<LoadResult> {
  // The persistent rows on SQLite data directories, as `npm run bench`'s persistent rows.
  const dirs = setup.startsWith('p')
    ? [0, 1].map(() => mkdtempSync(join(tmpdir(), 'pubsub-bench-data-')))
    : [];
  const nodes: BrokerHandle[] =
    setup === 'single' || setup === 'psingle'
      ? [
          await startBroker('pubsub', {
            noDelay: true,
            ...profiling(`${setup}-q${qos}`),
            ...(dirs[0] ? { dataDir: dirs[0] } : {}),
          }),
        ]
      : [
          await startNode(natsUrl, `${setup}-q${qos}-a`, dirs[0]),
          await startNode(natsUrl, `${setup}-q${qos}-b`, dirs[1]),
        ];
  try {
    const result = await runLoad({
      scenario: setup.startsWith('p') ? 'persistent' : 'fanin',
      url: nodes[0]!.tcpUrl,
      ...(setup.endsWith('cross') ? { subUrl: nodes[1]!.tcpUrl } : {}),
      ...COMMON,
      pubs: 10,
      subs: 1,
      qos,
      brokerPid: nodes[setup.endsWith('cross') ? 1 : 0]!.pid,
    });
    if (setup.endsWith('cross')) console.error(`  ${await batchShape(nodes[0]!)}`);
    return result;
  } finally {
    for (const node of nodes) await node.stop();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }
}

/** How the sending node batched: messages per NATS message (its /metrics counters). */
async function batchShape(node: BrokerHandle): Promise<string> {
  const text = await (await fetch(`${node.apiUrl}/metrics`)).text();
  const messages = seriesValue(text, 'pubsub_cluster_messages_sent_total', {});
  const batches = seriesValue(text, 'pubsub_cluster_batches_sent_total', {});
  return `node A sent ${messages} messages in ${batches} batches: ${(messages / batches).toFixed(1)} per batch`;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s[Math.floor((s.length - 1) / 2)]!;
};

const nats = await startNats();
const results = new Map<string, LoadResult[]>();
try {
  for (let rep = 1; rep <= reps; rep++) {
    currentRep = rep;
    for (const qos of levels) {
      const setups = [
        ...(parts.includes('fanin') ? (['single', 'local', 'cross'] as const) : []),
        ...(parts.includes('spread') ? (['spread1', 'spread2', 'spread3'] as const) : []),
        ...(parts.includes('persistent') && qos === 1 ? (['psingle', 'plocal', 'pcross'] as const) : []),
      ];
      for (const setup of setups) {
        const r = setup.startsWith('spread')
          ? await measureSpread(setup as Spread, qos, nats.url)
          : await measure(setup as Setup, qos, nats.url);
        const key = `${setup} q${qos}`;
        results.set(key, [...(results.get(key) ?? []), r]);
        const { lost, duplicates, outOfOrder } = r.checks;
        console.error(
          `rep ${rep} ${key}: ${Math.round(r.deliveredPerSec)} msgs/s (lost ${lost}, dup ${duplicates}, out of order ${outOfOrder})`,
        );
      }
    }
  }
} finally {
  await stopChild(nats.child);
  rmSync(nats.storeDir, { recursive: true, force: true });
  killAllChildren();
}

const rate = (key: string): number => median((results.get(key) ?? []).map((r) => r.deliveredPerSec));
const lines: string[] = [];
if (parts.includes('fanin'))
  lines.push(
    `Cluster fan-in 10→1, 64 B, window 1000; medians of ${reps} run(s) of ${durationS} s; one machine, one nats-server.`,
    '',
    '| QoS | single msgs/s | clustered, local msgs/s | cross-node msgs/s | local / single | cross / single |',
    '|---|---|---|---|---|---|',
  );
for (const qos of parts.includes('fanin') ? levels : []) {
  const single = rate(`single q${qos}`);
  const local = rate(`local q${qos}`);
  const cross = rate(`cross q${qos}`);
  lines.push(
    `| ${qos} | ${Math.round(single)} | ${Math.round(local)} | ${Math.round(cross)} | ${(local / single).toFixed(2)} | ${(cross / single).toFixed(2)} |`,
  );
}
if (parts.includes('spread')) {
  lines.push(
    '',
    `Fan-out 1→${spreadSubs}, 64 B, window 1000, the publisher on the first node, the subscribers spread over 1, 2, 3 nodes; aggregate deliveries/s, medians of ${reps} run(s) of ${durationS} s.`,
    '',
    '| QoS | 1 node msgs/s | 2 nodes msgs/s | 3 nodes msgs/s | 2 / 1 | 3 / 1 |',
    '|---|---|---|---|---|---|',
  );
  for (const qos of levels) {
    const [one, two, three] = [1, 2, 3].map((n) => rate(`spread${n} q${qos}`)) as [number, number, number];
    lines.push(
      `| ${qos} | ${Math.round(one)} | ${Math.round(two)} | ${Math.round(three)} | ${(two / one).toFixed(2)} | ${(three / one).toFixed(2)} |`,
    );
  }
}
if (parts.includes('persistent') && levels.includes(1)) {
  const [single, local, cross] = [rate('psingle q1'), rate('plocal q1'), rate('pcross q1')];
  lines.push(
    '',
    `Persistent-session QoS 1 fan-in 10→1, 64 B, window 1000 (every delivery written before its PUBACK): one node on SQLite against node A of a two-node cluster (SQLite and the JetStream session journal), everyone on A, and the subscriber on B (each PUBACK waits for B to journal it); medians of ${reps} run(s) of ${durationS} s.`,
    '',
    '| single (SQLite) msgs/s | clustered, journaled msgs/s | subscriber on the other node msgs/s | clustered / single | other node / single |',
    '|---|---|---|---|---|',
    `| ${Math.round(single)} | ${Math.round(local)} | ${Math.round(cross)} | ${(local / single).toFixed(2)} | ${(cross / single).toFixed(2)} |`,
  );
}
console.log(lines.join('\n'));
