import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  BENCH_DIR,
  BROKERS,
  type BrokerHandle,
  type BrokerInfo,
  type BrokerName,
  brokerInfo,
  dirHasFiles,
  killAllChildren,
  makeTempDir,
  removeTempDir,
  spawnTracked,
  startBroker,
} from './brokers.ts';
import { startConnWorkers } from './conn-workers.ts';
import { runLoadChild } from './load-child.ts';
import { cpuDelta, cpuSnapshot, procRssKb } from './proc.ts';
import { type ConnResult, type Meta, type RunRecord, renderReport } from './report.ts';
import { type Scenario, selectScenarios } from './scenarios.ts';
import { LatencyHistogram } from './stats.ts';

const USAGE = `usage: npm run bench -- [options]
  --quick            smoke subset, 1 repetition, short runs (< 2 min)
  --all              the whole matrix (every scenario x QoS 0/1 x 64 B/1 KB x TCP/WS; ~1 h)
  --reps N           repetitions per scenario and broker (default 3; quick 1)
  --only REGEX       scenarios whose id matches (ids: fanin-q0-64B, fanout100-q1-1KB-ws, ...)
  --duration S       measured seconds per run (default 3; quick 1.5)
  --warmup S         warm-up seconds before measuring (default 1; quick 0.5)
  --nodelay          add the -nodelay rows (peers with TCP_NODELAY on)
  --brokers LIST     comma-separated subset of pubsub,mosquitto,aedes
  --profile          run our broker with --cpu-prof (profiles in bench/results/profiles-<ts>/)
  --max-minutes M    stop starting new runs after M minutes (default 25; quick 3)
  --refill MODE      generator refill: turn (default, once per event-loop turn) or delivery
  --gen-nagle        leave Nagle on in the generator's sockets (default: TCP_NODELAY on)
  --cluster          then the cluster rows (bench/cluster.ts, needs nats-server: one node,
                     a clustered node, across two nodes, spread over three; ~5 min), same
                     --reps and --duration, appended to the report
  --list             print the selected scenario ids and exit`;

const { values: opts } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    all: { type: 'boolean', default: false },
    reps: { type: 'string' },
    only: { type: 'string' },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    nodelay: { type: 'boolean', default: false },
    brokers: { type: 'string' },
    profile: { type: 'boolean', default: false },
    'max-minutes': { type: 'string' },
    refill: { type: 'string', default: 'turn' },
    'gen-nagle': { type: 'boolean', default: false },
    cluster: { type: 'boolean', default: false },
    list: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (opts.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}

const quick = opts.quick;
const reps = Number(opts.reps ?? (quick ? 1 : 3));
const durationS = Number(opts.duration ?? (quick ? 1.5 : 3));
const warmupS = Number(opts.warmup ?? (quick ? 0.5 : 1));
const maxMinutes = Number(opts['max-minutes'] ?? (quick ? 3 : 25));
const scenarios = selectScenarios({
  quick,
  all: opts.all,
  nodelay: opts.nodelay,
  ...(opts.only ? { only: new RegExp(opts.only) } : {}),
});
if (opts.list) {
  for (const s of scenarios) process.stdout.write(`${s.id}\t${s.label}\n`);
  process.exit(0);
}
if (scenarios.length === 0) {
  process.stderr.write(`no scenario selected\n${USAGE}\n`);
  process.exit(2);
}
const refillMode = opts.refill === 'delivery' ? 'delivery' : 'turn';
if (!(reps >= 1) || !(durationS > 0) || !(warmupS >= 0) || !['turn', 'delivery'].includes(opts.refill!)) {
  process.stderr.write(`bad --reps/--duration/--warmup\n${USAGE}\n`);
  process.exit(2);
}

const wanted = opts.brokers ? (opts.brokers.split(',') as BrokerName[]) : [...BROKERS];
const infos: BrokerInfo[] = wanted.map((b) => {
  if (!BROKERS.includes(b)) {
    process.stderr.write(`unknown broker ${b}\n`);
    process.exit(2);
  }
  return brokerInfo(b);
});
const active = infos.filter((i) => i.available);

// ---- cleanup on every way out ----
let interrupted = false;
process.on('exit', killAllChildren);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    if (interrupted) {
      killAllChildren();
      process.exit(130);
    }
    interrupted = true;
    process.stderr.write(`\n${sig}: stopping; killing child processes and writing partial results\n`);
    killAllChildren();
    finish(true);
    process.exit(130);
  });
}
process.on('uncaughtException', (err) => {
  process.stderr.write(`bench: ${err.stack ?? err}\n`);
  killAllChildren();
  process.exit(1);
});

const stamp = new Date().toISOString().replace(/[:.]/g, '-').replace(/Z$/, 'Z');
const resultsDir = join(BENCH_DIR, 'results');
mkdirSync(resultsDir, { recursive: true });
const profileDir = join(resultsDir, `profiles-${stamp}`);
const records: RunRecord[] = [];
const startedAt = Date.now();
const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;

const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---- one throughput/latency run ----

async function runOne(s: Scenario, broker: BrokerInfo, rep: number): Promise<RunRecord> {
  const base: RunRecord = {
    scenario: s.id,
    broker: broker.name,
    rep,
    status: 'ok',
    at: new Date().toISOString(),
  };
  if (s.transport === 'ws' && !broker.ws) return { ...base, status: 'n/a', note: broker.wsNote ?? 'n/a' };
  const persistentDir =
    s.group === 'persistent' && broker.name === 'pubsub' ? makeTempDir('bench-data-') : undefined;
  let handle: BrokerHandle | undefined;
  try {
    handle = await startBroker(broker.name, {
      noDelay: s.noDelay,
      ...(persistentDir ? { dataDir: persistentDir } : {}),
      ...(opts.profile && broker.name === 'pubsub'
        ? {
            nodeFlags: [
              '--cpu-prof',
              `--cpu-prof-dir=${profileDir}`,
              `--cpu-prof-name=${s.id}-rep${rep}.cpuprofile`,
            ],
          }
        : {}),
    });
    const url = s.transport === 'ws' ? handle.wsUrl : handle.tcpUrl;
    if (url === undefined) return { ...base, status: 'n/a', note: 'n/a (no ws listener)' };
    await sleep(200);
    if (s.conns !== undefined) {
      const conn = await runConnStorm(handle, s.conns);
      return { ...base, conn, ...(conn.connected < s.conns ? { status: 'failed' as const } : {}) };
    }
    const load = await runLoadChild({
      ...s.load!,
      url,
      brokerPid: handle.pid,
      durationS,
      warmupS,
      refill: refillMode,
      noDelay: !opts['gen-nagle'],
    });
    const alive = procRssKb(handle.pid) !== null;
    const record: RunRecord = { ...base, load, ...(load.ok ? {} : { status: 'failed' as const }) };
    if (!alive) {
      record.status = 'failed';
      record.note = 'broker process died';
    }
    if (persistentDir) record.stored = dirHasFiles(persistentDir);
    return record;
  } catch (err) {
    const tail = handle?.output().trim().split('\n').slice(-5).join(' | ');
    return {
      ...base,
      status: 'failed',
      note: `${(err as Error).message}${tail ? ` [broker: ${tail}]` : ''}`,
    };
  } finally {
    await handle?.stop();
    if (persistentDir) removeTempDir(persistentDir);
  }
}

// ---- connection storm ----

const HOLD_MS = 3000;

async function runConnStorm(handle: BrokerHandle, total: number): Promise<ConnResult> {
  const workers = await startConnWorkers(handle.tcpUrl, total);
  try {
    const rssBeforeKb = procRssKb(handle.pid);
    const a = cpuSnapshot(handle.pid, workers.pids);
    const results = await workers.go();
    const b = cpuSnapshot(handle.pid, workers.pids);
    await sleep(HOLD_MS);
    const rssAfterKb = procRssKb(handle.pid);
    const held = await workers.held();
    const cpu = cpuDelta(a, b);
    const connected = results.reduce((n, r) => n + r.ok, 0);
    const hist = new LatencyHistogram();
    for (const r of results) hist.merge(LatencyHistogram.fromJSON(r.latency));
    const errors = results.flatMap((r) => r.errors);
    return {
      requested: total,
      connected,
      failed: results.reduce((n, r) => n + r.failed, 0),
      errors,
      held,
      seconds: cpu.seconds,
      connPerSec: connected / cpu.seconds,
      brokerUsPerConn: cpu.brokerUs !== null && connected > 0 ? cpu.brokerUs / connected : null,
      brokerPct: cpu.brokerPct,
      generatorPct: cpu.generatorPct,
      otherPct: cpu.otherPct,
      rssBeforeKb,
      rssAfterKb,
      rssPerConnKb:
        rssBeforeKb !== null && rssAfterKb !== null && connected > 0
          ? (rssAfterKb - rssBeforeKb) / connected
          : null,
      connectLatency: hist.summary(),
      workers: workers.pids.length,
    };
  } finally {
    await workers.close();
  }
}

// ---- report ----

let finished = false;
function finish(partial: boolean): void {
  if (finished) return;
  finished = true;
  const meta: Meta = {
    command,
    stamp,
    partial,
    reps,
    durationS,
    warmupS,
    generator: { refill: refillMode, noDelay: !opts['gen-nagle'] },
    elapsedS: (Date.now() - startedAt) / 1000,
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      memGiB: Math.round(totalmem() / 2 ** 30),
      kernel: release(),
      node: process.version,
    },
    brokers: infos,
    scenarios: scenarios.map((s) => ({ id: s.id, label: s.label, group: s.group })),
  };
  const report = renderReport(meta, scenarios, records);
  const json = report.json;
  const markdown =
    clusterMarkdown === undefined
      ? report.markdown
      : `${report.markdown}\n## Cluster (bench/cluster.ts)\n\n${clusterMarkdown}\n`;
  const mdPath = join(resultsDir, `${stamp}.md`);
  const jsonPath = join(resultsDir, `${stamp}.json`);
  writeFileSync(mdPath, markdown);
  writeFileSync(jsonPath, `${JSON.stringify(json, null, 2)}\n`);
  process.stdout.write(`${markdown}\n`);
  log(`results: ${mdPath}\n         ${jsonPath}`);
  if (opts.profile) log(`profiles: ${profileDir}`);
}

function describe(r: RunRecord): string {
  if (r.status === 'n/a') return r.note ?? 'n/a';
  if (r.load) {
    const l = r.load;
    const f = (x: number | null | undefined, d = 0): string => (x == null ? '-' : x.toFixed(d));
    const c = l.checks;
    const bad = [
      c.lost ? `lost ${c.lost}` : '',
      c.misrouted ? `misrouted ${c.misrouted}` : '',
      c.outOfOrder ? `out-of-order ${c.outOfOrder}` : '',
      c.missingPubacks ? `missing-puback ${c.missingPubacks}` : '',
    ]
      .filter(Boolean)
      .join(' ');
    return (
      `${Math.round(l.deliveredPerSec).toLocaleString('en-US')} msgs/s p50/p99 ${f(l.latency.p50, 2)}/${f(l.latency.p99, 1)} ms ` +
      `cpu b/g/other ${f(l.cpu.brokerPct)}/${f(l.cpu.generatorPct)}/${f(l.cpu.otherPct)} %${bad ? ` ${bad}` : ''}` +
      `${r.note ? ` (${r.note})` : ''}`
    );
  }
  if (r.conn) {
    const c = r.conn;
    return (
      `${c.connected}/${c.requested} connected, ${Math.round(c.connPerSec)} conn/s, ` +
      `${c.brokerUsPerConn?.toFixed(0)} us/conn, ${c.rssPerConnKb?.toFixed(2)} KB/conn, held ${c.held}`
    );
  }
  return r.note ?? r.status;
}

/** The cluster rows' markdown (`--cluster`), written into the report by `finish`. */
let clusterMarkdown: string | undefined;

/** Runs bench/cluster.ts with this run's repetitions and durations; its table, or why there is none. */
async function runCluster(): Promise<string> {
  const child = spawnTracked(
    process.execPath,
    [join(BENCH_DIR, 'cluster.ts'), '--reps', String(reps), '--duration', String(durationS)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  return code === 0 ? out.trim() : `bench/cluster.ts failed (exit ${code}): see the log above.`;
}

// ---- main ----

log(
  `bench: ${scenarios.length} scenarios x ${active.length} brokers x ${reps} reps, ` +
    `${warmupS}+${durationS} s per run; brokers: ${infos
      .map((i) => `${i.name}${i.available ? (i.version ? ` ${i.version}` : '') : ' (skipped)'}`)
      .join(', ')}`,
);
for (const i of infos) if (!i.available) log(`  ${i.name}: ${i.note}`);
if (opts.profile) mkdirSync(profileDir, { recursive: true });

let timeUp = false;
outer: for (const s of scenarios) {
  for (let rep = 1; rep <= reps; rep++) {
    for (const broker of active) {
      if (Date.now() - startedAt > maxMinutes * 60_000) {
        timeUp = true;
        log(`--max-minutes ${maxMinutes} reached: stopping before ${s.id}`);
        break outer;
      }
      const t = Date.now();
      const record = await runOne(s, broker, rep);
      records.push(record);
      log(
        `[${((Date.now() - startedAt) / 1000).toFixed(0).padStart(4)} s] ${s.id} ${broker.name} #${rep}: ` +
          `${record.status === 'failed' ? 'FAILED ' : ''}${describe(record)} (${((Date.now() - t) / 1000).toFixed(1)} s)`,
      );
      await sleep(150);
    }
  }
}
if (opts.cluster && !timeUp) clusterMarkdown = await runCluster();
finish(timeUp);
killAllChildren();
