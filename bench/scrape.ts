/**
 * `node bench/scrape.ts`: what a Prometheus scrape costs under load. Fan-in 10 → 1, 64 B, at
 * QoS 0 and 1, through our broker two ways: no scrape, and `GET /metrics` every `--interval`
 * seconds (default 1, a Prometheus-style scraper in this process: one request at a time, body
 * read whole) from before the warm-up to the end of the load, so the measured window is scraped
 * throughout. Both variants run with the admin API listening (`--http-port 0`): the scrape is
 * the only difference. Interleaved (none, scrape, none, ...), a fresh broker per run, medians
 * of --reps (default 5) and the ratio scrape / none from the same run. Prints a markdown table
 * and writes bench/results/scrape-<ts>.{md,json}.
 */
import { parseArgs } from 'node:util';
import { type BrokerHandle, startBroker } from './brokers.ts';
import type { LoadResult } from './load.ts';
import { runLoadChild } from './load-child.ts';
import { median, range } from './stats.ts';
import { type BenchQoS, FANIN_64B, fmt, runInterleaved, writeResults } from './variants.ts';

const USAGE = `usage: node bench/scrape.ts [options]
  --reps N        repetitions per QoS and variant (default 5)
  --duration S    measured seconds per run (default 5)
  --warmup S      warm-up seconds before measuring (default 1)
  --interval S    seconds between scrapes (default 1)
  --qos LIST      comma-separated QoS levels (default 0,1)`;

const { values: opts } = parseArgs({
  options: {
    reps: { type: 'string', default: '5' },
    duration: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    interval: { type: 'string', default: '1' },
    qos: { type: 'string', default: '0,1' },
    help: { type: 'boolean', default: false },
  },
});
const reps = Number(opts.reps);
const durationS = Number(opts.duration);
const warmupS = Number(opts.warmup);
const intervalS = Number(opts.interval);
const QOS = opts.qos.split(',').map(Number) as BenchQoS[];
if (
  opts.help ||
  !(reps >= 1 && durationS > 0 && warmupS >= 0 && intervalS > 0) ||
  QOS.some((q) => q !== 0 && q !== 1)
) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(opts.help ? 0 : 2);
}

type Variant = 'none' | 'scrape';
const VARIANTS: readonly Variant[] = ['none', 'scrape'];

interface Scrapes {
  count: number;
  failed: number;
  /** Milliseconds from request to the last byte of the body, per scrape. */
  ms: number[];
  bytes: number;
}

interface Run {
  variant: Variant;
  qos: BenchQoS;
  rep: number;
  load?: LoadResult;
  scrapes?: Scrapes;
  error?: string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Scrapes `url` every `intervalS` until `stop` resolves; one request at a time, like Prometheus. */
async function scrapeUntil(url: string, stop: Promise<unknown>): Promise<Scrapes> {
  const scrapes: Scrapes = { count: 0, failed: 0, ms: [], bytes: 0 };
  let stopped = false;
  const ended = stop.then(
    () => {},
    () => {},
  );
  void ended.then(() => {
    stopped = true;
  });
  while (!stopped) {
    const start = performance.now();
    try {
      const res = await fetch(url);
      const body = await res.arrayBuffer();
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      scrapes.ms.push(performance.now() - start);
      scrapes.bytes = body.byteLength;
      scrapes.count++;
    } catch {
      scrapes.failed++;
    }
    const next = start + intervalS * 1000;
    await Promise.race([sleep(Math.max(0, next - performance.now())), ended]);
  }
  return scrapes;
}

async function runOne(variant: Variant, qos: BenchQoS, rep: number): Promise<Run> {
  let broker: BrokerHandle | undefined;
  try {
    broker = await startBroker('pubsub', {
      noDelay: false,
      serveArgs: ['--http-port', '0', '--ws-port', '-1'],
    });
    if (broker.apiUrl === undefined) throw new Error(`no admin API in the banner:\n${broker.output()}`);
    await sleep(200);
    const load = runLoadChild({
      ...FANIN_64B,
      qos,
      url: broker.tcpUrl,
      brokerPid: broker.pid,
      durationS,
      warmupS,
    });
    const scrapes = variant === 'scrape' ? await scrapeUntil(`${broker.apiUrl}/metrics`, load) : undefined;
    return { variant, qos, rep, load: await load, ...(scrapes ? { scrapes } : {}) };
  } catch (err) {
    return { variant, qos, rep, error: (err as Error).message };
  } finally {
    await broker?.stop();
  }
}

function report(runs: readonly Run[]): string {
  const rows = [
    '| QoS | scrape | delivered msgs/s (min-max) | vs no scrape | p50 ms | p99 ms | broker CPU % | scrapes per run | scrape ms p50 / max | scrape KB | lost / out of order |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const qos of QOS) {
    const rateOf = (v: Variant) =>
      runs.filter((r) => r.qos === qos && r.variant === v).map((r) => r.load?.deliveredPerSec);
    const base = median(rateOf('none'));
    for (const variant of VARIANTS) {
      const mine = runs.filter((r) => r.qos === qos && r.variant === variant && r.load !== undefined);
      const rate = median(rateOf(variant));
      const span = range(rateOf(variant));
      const ms = mine.flatMap((r) => r.scrapes?.ms ?? []);
      const scraped = variant === 'scrape';
      rows.push(
        `| ${qos} | ${scraped ? `every ${intervalS} s` : 'none'} | ${fmt(rate)} (${span ? `${fmt(span[0])}-${fmt(span[1])}` : 'n/a'}) | ${rate !== null && base ? `${fmt(rate / base, 3)}x` : 'n/a'} | ${fmt(median(mine.map((r) => r.load!.latency.p50)), 2)} | ${fmt(median(mine.map((r) => r.load!.latency.p99)), 2)} | ${fmt(median(mine.map((r) => r.load!.cpu.brokerPct)))} | ${scraped ? fmt(median(mine.map((r) => r.scrapes!.count))) : '-'} | ${scraped ? `${fmt(median(ms), 1)} / ${fmt(ms.length > 0 ? Math.max(...ms) : null, 1)}` : '-'} | ${scraped ? fmt(median(mine.map((r) => r.scrapes!.bytes / 1024)), 1) : '-'} | ${mine.reduce((a, r) => a + r.load!.checks.lost, 0)} / ${mine.reduce((a, r) => a + r.load!.checks.outOfOrder, 0)} |`,
      );
    }
  }
  const failed = runs.filter((r) => r.error !== undefined || (r.scrapes?.failed ?? 0) > 0);
  return [
    `# Prometheus scrape cost, ${new Date().toISOString()}`,
    '',
    `Fan-in 10 → 1, 64 B, window 1000, \`--data-dir :memory:\`, ${reps} repetitions (median; none and scrape interleaved), ${warmupS} s warm-up + ${durationS} s measured; scrape: GET /metrics every ${intervalS} s through the whole run.`,
    `Command: \`node bench/scrape.ts ${process.argv.slice(2).join(' ')}\``.replace(/ `$/, '`'),
    '',
    ...rows,
    ...(failed.length > 0
      ? [
          '',
          `Failed: ${failed.map((r) => `q${r.qos} ${r.variant} #${r.rep}: ${r.error ?? `${r.scrapes!.failed} scrapes failed`}`).join('; ')}`,
        ]
      : []),
    '',
  ].join('\n');
}

const runs = await runInterleaved(QOS, reps, VARIANTS, runOne, (run) => {
  const l = run.load;
  const s = run.scrapes;
  return `q${run.qos} ${run.variant} #${run.rep}: ${run.error ?? `${fmt(l?.deliveredPerSec)} msgs/s p99 ${fmt(l?.latency.p99, 1)} ms cpu ${fmt(l?.cpu.brokerPct)} %${s ? ` scrapes ${s.count} (${s.failed} failed) p50 ${fmt(median(s.ms), 1)} ms` : ''}`}`;
});
console.error(`results: ${writeResults('scrape', report(runs), runs)}.{md,json}`);
