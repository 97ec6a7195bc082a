/**
 * The cluster's cost (issue 18), ratios within one run: `node bench/cluster.ts [--reps N]
 * [--duration S] [--qos 0,1]`, ~2 min with the defaults. Needs the Debian package nats-server.
 *
 * For QoS 0 and QoS 1, fan-in 64 B (10 publishers -> 1 subscriber, window 1000, as
 * `npm run bench`'s fanin rows), three set-ups, one after the other in each repetition:
 *   single   one `pubsub serve` without --cluster, everyone on it;
 *   local    node A of a two-node cluster, everyone on A (nothing crosses: B wants nothing);
 *   cross    publishers on node A, the subscriber on node B: every message crosses NATS.
 * Medians of the delivered msgs/s, and local/single and cross/single. Every broker process is
 * fresh per run; the load generator is this process (bench/load.ts).
 */
import { type ChildProcess, spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import {
  type BrokerHandle,
  freePort,
  killAllChildren,
  spawnTracked,
  startBroker,
  stopChild,
} from './brokers.ts';
import { type LoadResult, runLoad } from './load.ts';

const { values } = parseArgs({
  options: {
    reps: { type: 'string', default: '3' },
    duration: { type: 'string', default: '3' },
    qos: { type: 'string', default: '0,1' },
  },
});
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

async function startNats(): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const child = spawnTracked('nats-server', ['-a', '127.0.0.1', '-p', String(port)]);
  await new Promise<void>((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`nats-server did not start:\n${text}`)), 10_000);
    child.stderr?.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      if (text.includes('Server is ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return { url: `nats://127.0.0.1:${port}`, child };
}

async function startNode(natsUrl: string, name: string): Promise<BrokerHandle> {
  const node = await startBroker('pubsub', {
    noDelay: true,
    serveArgs: ['--cluster', natsUrl, '--node-name', name, '--http-port', '0'],
  });
  const deadline = Date.now() + 15_000;
  while ((await fetch(`${node.apiUrl}/readyz`).catch(() => undefined))?.status !== 200) {
    if (Date.now() > deadline) throw new Error(`${name}: cluster link not up\n${node.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return node;
}

type Setup = 'single' | 'local' | 'cross';

async function measure(setup: Setup, qos: 0 | 1, natsUrl: string): Promise<LoadResult> {
  const nodes: BrokerHandle[] =
    setup === 'single'
      ? [await startBroker('pubsub', { noDelay: true })]
      : [await startNode(natsUrl, `bench-a-${setup}`), await startNode(natsUrl, `bench-b-${setup}`)];
  try {
    return await runLoad({
      scenario: 'fanin',
      url: nodes[0]!.tcpUrl,
      ...(setup === 'cross' ? { subUrl: nodes[1]!.tcpUrl } : {}),
      // The subscription's interest reaches node A in milliseconds; the same pause everywhere.
      settleMs: 200,
      pubs: 10,
      subs: 1,
      qos,
      size: 64,
      window: 1000,
      batch: 32,
      durationS,
      warmupS: 1,
      brokerPid: nodes[setup === 'cross' ? 1 : 0]!.pid,
    });
  } finally {
    for (const node of nodes) await node.stop();
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s[Math.floor((s.length - 1) / 2)]!;
};

const nats = await startNats();
const results = new Map<string, LoadResult[]>();
try {
  for (let rep = 1; rep <= reps; rep++) {
    for (const qos of levels) {
      for (const setup of ['single', 'local', 'cross'] as const) {
        const r = await measure(setup, qos, nats.url);
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
  killAllChildren();
}

const rate = (key: string): number => median((results.get(key) ?? []).map((r) => r.deliveredPerSec));
const lines = [
  `Cluster fan-in 10→1, 64 B, window 1000; medians of ${reps} run(s) of ${durationS} s; one machine, one nats-server.`,
  '',
  '| QoS | single msgs/s | clustered, local msgs/s | cross-node msgs/s | local / single | cross / single |',
  '|---|---|---|---|---|---|',
];
for (const qos of levels) {
  const single = rate(`single q${qos}`);
  const local = rate(`local q${qos}`);
  const cross = rate(`cross q${qos}`);
  lines.push(
    `| ${qos} | ${Math.round(single)} | ${Math.round(local)} | ${Math.round(cross)} | ${(local / single).toFixed(2)} | ${(cross / single).toFixed(2)} |`,
  );
}
console.log(lines.join('\n'));
