/**
 * `node bench/idle-footprint.ts`: what a broker holds before its first client (docs/performance.md,
 * "Idle footprint"). Each repetition starts a fresh process, as `npm start` would for ours
 * (`serve` with a new data directory, the admin API on, loopback, port 0 everywhere), waits
 * --settle-ms (default 6000) after it reports listening, and reads /proc/<pid>/status: VmRSS
 * (what the goal counts), RssAnon (the process's private memory) and RssFile (mapped
 * files, mostly the executable's pages, which every process running the same binary shares).
 * mosquitto, when installed, is started the same way with its bench configuration. --reps
 * (default 3) repetitions, alternating the brokers; medians in MB. Prints a markdown table.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import {
  type BrokerHandle,
  brokerInfo,
  killAllChildren,
  makeTempDir,
  removeTempDir,
  startBroker,
} from './brokers.ts';
import { median } from './stats.ts';

const { values: opts } = parseArgs({
  options: {
    'settle-ms': { type: 'string', default: '6000' },
    reps: { type: 'string', default: '3' },
  },
});
const SETTLE_MS = Number(opts['settle-ms']);
const REPS = Number(opts.reps);

interface Footprint {
  rss: number;
  anon: number;
  file: number;
}

/** VmRSS, RssAnon and RssFile of a process, in KiB. */
function footprintKb(pid: number): Footprint {
  const status = readFileSync(`/proc/${pid}/status`, 'latin1');
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1]);
  return { rss: field('VmRSS'), anon: field('RssAnon'), file: field('RssFile') };
}

async function measure(name: 'pubsub' | 'mosquitto'): Promise<Footprint> {
  const dataDir = name === 'pubsub' ? makeTempDir('bench-idle-') : undefined;
  let broker: BrokerHandle | undefined;
  try {
    broker = await startBroker(name, {
      noDelay: true,
      ...(dataDir ? { dataDir, serveArgs: ['--http-port', '0'] } : {}),
    });
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    return footprintKb(broker.pid);
  } finally {
    await broker?.stop();
    if (dataDir) removeTempDir(dataDir);
  }
}

const brokers = brokerInfo('mosquitto').available
  ? (['pubsub', 'mosquitto'] as const)
  : (['pubsub'] as const);
const samples = new Map<string, Footprint[]>(brokers.map((b) => [b, []]));
try {
  for (let rep = 0; rep < REPS; rep++)
    for (const name of brokers) samples.get(name)!.push(await measure(name));
} finally {
  killAllChildren();
}
const mb = (kb: number[]): string => ((median(kb) ?? Number.NaN) / 1024).toFixed(1);
console.log(
  `| broker | VmRSS MB | RssAnon MB | RssFile MB | (median of ${REPS}, ${SETTLE_MS} ms after listening) |`,
);
console.log('|---|---|---|---|---|');
for (const [name, list] of samples)
  console.log(
    `| ${name} | ${mb(list.map((s) => s.rss))} | ${mb(list.map((s) => s.anon))} | ${mb(list.map((s) => s.file))} | |`,
  );
