/**
 * `node bench/neighbours.ts`: isolation between tenants and clients (issue 20), three scenarios.
 *
 * - `noisy` (ours only: it needs two brokers in one server): broker A (`noisy.local`) flooded
 *   by `--flood-pubs` QoS 0 publishers writing as fast as their sockets take it, one subscriber
 *   reading A's topic; broker B (`steady.local`) carries a steady `--rate` (1,000) msgs/s QoS 1
 *   stream, publisher and subscriber in one process, latency from each payload's scheduled send
 *   time (neighbour-load.ts). Both brokers are created through the admin API with authType NONE
 *   and reached by MQTT user name. One broker process per repetition; B's stream runs
 *   throughout and is measured in two windows, A idle and A flooding (order alternating between
 *   repetitions), each after a warm-up. Reported: B's delivered rate and p50/p99 latency in each
 *   phase (medians over repetitions) and the ratios flood / idle; goal ≥ 0.95 and < 3.
 * - `stalled`: fan-out 1 → 10 at QoS 0 (bench/load.ts, closed loop, window 20, `--size` 1 KB),
 *   with and without one more subscriber on the same topic that is a raw socket which sends
 *   CONNECT and SUBSCRIBE, reads the SUBACK and never reads again. Interleaved, a fresh broker
 *   per run; the broker's VmRSS sampled every 100 ms. Reported: the others' delivered rate (and
 *   the ratio with / without) and the RSS growth over the run.
 * - `stalled-many`: `--stalled-subs` (1,000) such sockets subscribed to `#`, one publisher
 *   flooding QoS 0 64 B at full speed, and a victim client sending PINGREQ every 100 ms
 *   (pipelined: late answers do not thin the samples): its round trips (p50/p99/max), the peak RSS; against
 *   the same flood with no stalled subscribers. A run whose broker passes `--rss-cap-mb` is
 *   stopped there and marked.
 *
 * - `slow-function` (ours only, issue 22): the `noisy` set-up with broker A running a sandboxed
 *   function that busy-loops 100 ms per call (`--function-cpu-ms 1000`), fed by one flooding
 *   publisher (the hook's backpressure holds it to what the function takes); B has no hook.
 *   With `--baseline DIR` each repetition also runs the broker of that checkout (`before`), so
 *   the before/after p99 ratios come from one run. Goal: B's p99 with A busy ≤ 1.5× A idle.
 *
 * Writes bench/results/neighbours-<ts>.{md,json}.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { encode } from '../src/protocol/index.ts';
import {
  adminApi as api,
  BENCH_DIR,
  type BrokerHandle,
  type BrokerName,
  type BrokerProfiling,
  brokerInfo,
  killAllChildren,
  makeTempDir,
  profiledRun,
  REPO_DIR,
  removeTempDir,
  spawnTracked,
  startBroker,
  stopChild,
} from './brokers.ts';
import type { LoadResult } from './load.ts';
import { runLoadChild } from './load-child.ts';
import type { FloodParams, FloodStats, SteadyParams, SteadyReport } from './neighbour-load.ts';
import { cpuDelta, cpuSnapshot, procRssKb } from './proc.ts';
import { median, range } from './stats.ts';
import { fmt, writeResults } from './variants.ts';
import { type PingResult, pingerProcess, rawConnect } from './victim.ts';

const USAGE = `usage: node bench/neighbours.ts [options]
  --scenario LIST    noisy,stalled,stalled-many,slow-function (default the first three)
  --baseline DIR     slow-function: also run the broker of this checkout, labelled before
  --reps N           repetitions (default 3)
  --duration S       measured seconds per window or run (default 5)
  --warmup S         warm-up seconds (default 1)
  --brokers LIST     pubsub,mosquitto (default both; noisy is ours only)
  --rate N           noisy: B's QoS 1 rate, msgs/s (default 1000)
  --flood-pubs N     noisy: A's publishers (default 4)
  --size N           stalled: payload bytes (default 1024)
  --stalled-subs N   stalled-many: non-reading # subscribers (default 1000)
  --rss-cap-mb N     stalled-many: stop a run whose broker passes this RSS (default 4096)
  --profile          run our broker with --cpu-prof (bench/results/profiles-<ts>/<scenario>-<variant>-rep<N>.cpuprofile)
  --trace-gc         run our broker with --trace-gc (its output in <same>.gc.log)`;

const { values: opts } = parseArgs({
  options: {
    scenario: { type: 'string', default: 'noisy,stalled,stalled-many' },
    reps: { type: 'string', default: '3' },
    duration: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    brokers: { type: 'string', default: 'pubsub,mosquitto' },
    baseline: { type: 'string' },
    rate: { type: 'string', default: '1000' },
    'flood-pubs': { type: 'string', default: '4' },
    size: { type: 'string', default: '1024' },
    'stalled-subs': { type: 'string', default: '1000' },
    'rss-cap-mb': { type: 'string', default: '4096' },
    profile: { type: 'boolean', default: false },
    'trace-gc': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
const SCENARIOS = opts.scenario.split(',');
const reps = Number(opts.reps);
const durationS = Number(opts.duration);
const warmupS = Number(opts.warmup);
const rate = Number(opts.rate);
const floodPubs = Number(opts['flood-pubs']);
const size = Number(opts.size);
const stalledSubs = Number(opts['stalled-subs']);
const rssCapKb = Number(opts['rss-cap-mb']) * 1024;
const BROKERS = opts.brokers.split(',') as BrokerName[];
if (
  opts.help ||
  !(reps >= 1 && durationS > 0 && warmupS >= 0 && rate > 0 && floodPubs >= 1 && size >= 24) ||
  !(stalledSubs >= 1 && rssCapKb > 0) ||
  SCENARIOS.some((s) => !['noisy', 'stalled', 'stalled-many', 'slow-function'].includes(s)) ||
  BROKERS.some((b) => b !== 'pubsub' && b !== 'mosquitto')
) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(opts.help ? 0 : 2);
}

const profiling: BrokerProfiling = {
  cpu: opts.profile,
  gc: opts['trace-gc'],
  dir: join(BENCH_DIR, 'results', `profiles-${new Date().toISOString().replace(/[:.]/g, '-')}`),
};

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const mb = (kb: number | null | undefined): number | null => (kb == null ? null : kb / 1024);

// ---- load child processes (neighbour-load.ts) ----

interface LoadChild {
  child: ChildProcess;
  /** Sends `cmd`; resolves with the next message of type `reply` when one is given. */
  ask<T>(cmd: string, reply?: string): Promise<T | undefined>;
}

function startLoadChild(params: SteadyParams | FloodParams): Promise<LoadChild> {
  const child = spawnTracked(
    process.execPath,
    [join(BENCH_DIR, 'neighbour-load.ts'), JSON.stringify(params)],
    {
      cwd: REPO_DIR,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    },
  );
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString()).slice(-2000);
  });
  const waitFor = (type: string, ms = 30_000): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`${params.role}: no ${type} within ${ms} ms`)), ms);
      const onMessage = (msg: Record<string, unknown>): void => {
        if (msg.type === type) done(undefined, msg);
        else if (msg.type === 'error') done(new Error(`${params.role}: ${String(msg.error)}`));
      };
      const onExit = (code: number | null): void =>
        done(new Error(`${params.role} exited ${code}: ${stderr}`));
      const done = (err?: Error, msg?: Record<string, unknown>): void => {
        clearTimeout(timer);
        child.off('message', onMessage);
        child.off('exit', onExit);
        if (err) reject(err);
        else resolve(msg!);
      };
      child.on('message', onMessage);
      child.once('exit', onExit);
    });
  const handle: LoadChild = {
    child,
    async ask<T>(cmd: string, reply?: string): Promise<T | undefined> {
      const answer = reply === undefined ? undefined : waitFor(reply);
      child.send({ cmd });
      if (answer === undefined) return undefined;
      const msg = await answer;
      return (msg.report ?? msg.stats) as T;
    },
  };
  return waitFor('ready').then(() => handle);
}

// ---- raw sockets: a subscriber that stops reading ----

/** CONNECT + SUBSCRIBE(filter), waits for CONNACK and SUBACK (4 + 5 bytes in v3.1.1), then stops reading. */
async function stalledSubscriber(url: string, clientId: string, filter: string): Promise<Socket> {
  const subscribeBytes = encode(
    {
      type: 'subscribe',
      packetId: 1,
      subscriptions: [
        { topicFilter: filter, qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0 },
      ],
    },
    4,
  );
  // A small read buffer: once paused, the socket leaves what arrives in the kernel, as a client
  // that stopped reading does, instead of taking 64 KiB of it into this process first.
  const socket = await rawConnect(url, clientId, subscribeBytes, 1024);
  await new Promise<void>((resolve, reject) => {
    let seen = 0;
    const timer = setTimeout(() => reject(new Error(`${clientId}: no SUBACK`)), 15_000);
    socket.on('data', (chunk: Buffer) => {
      seen += chunk.length;
      if (seen >= 4 + 5) {
        clearTimeout(timer);
        socket.removeAllListeners('data');
        socket.pause();
        resolve();
      }
    });
    socket.once('close', () => reject(new Error(`${clientId}: closed before SUBACK`)));
  });
  socket.removeAllListeners('close');
  return socket;
}

/** VmRSS every 100 ms until stopped; `onSample` may end the run early (the RSS cap). */
function sampleRss(
  pid: number,
  onSample?: (kb: number) => void,
): () => { peakKb: number | null; endKb: number | null } {
  let peakKb: number | null = null;
  let endKb: number | null = null;
  const take = (): void => {
    const kb = procRssKb(pid);
    if (kb === null) return;
    endKb = kb;
    if (peakKb === null || kb > peakKb) peakKb = kb;
    onSample?.(kb);
  };
  take();
  const timer = setInterval(take, 100);
  return () => {
    clearInterval(timer);
    take();
    return { peakKb, endKb };
  };
}

// ---- noisy neighbour ----

type Phase = 'idle' | 'flood';

interface NoisyPhase {
  phase: Phase;
  steady: SteadyReport;
  flood: FloodStats & { seconds: number };
  brokerCpuPct: number | null;
  otherCpuPct: number;
}

interface NoisyRun {
  rep: number;
  /** slow-function: whose broker ran (this tree's, or the --baseline checkout's). */
  code?: 'before' | 'after';
  phases?: NoisyPhase[];
  /** Connected clients per broker seen through the API (routing check). */
  clients?: { noisy: number; steady: number };
  error?: string;
}

/** slow-function: A's function, 100 ms of busy loop per call. */
const SLOW_FUNCTION = `export function onPublish(messages) {
  const end = Date.now() + 100;
  while (Date.now() < end) {}
  return messages;
}`;

/** `slow`: A runs SLOW_FUNCTION (one flooding publisher) instead of a plain flood; `code` picks the broker. */
async function noisyRun(rep: number, slow?: { code: 'before' | 'after' }): Promise<NoisyRun> {
  const dataDir = makeTempDir('bench-neighbours-');
  let broker: BrokerHandle | undefined;
  const loads: LoadChild[] = [];
  const pubs = slow === undefined ? floodPubs : 1;
  try {
    broker = await startBroker('pubsub', {
      noDelay: false,
      dataDir,
      serveArgs: ['--http-port', '0', '--ws-port', '-1', ...(slow ? ['--function-cpu-ms', '1000'] : [])],
      ...(slow?.code === 'before' ? { repoDir: opts.baseline! } : {}),
      ...profiledRun(profiling, `${slow === undefined ? 'noisy' : `slow-function-${slow.code}`}-rep${rep}`),
    });
    if (broker.apiUrl === undefined) throw new Error(`no admin API in the banner:\n${broker.output()}`);
    const tokenFile = join(dataDir, 'admin-token');
    for (let i = 0; i < 50 && !existsSync(tokenFile); i++) await sleep(100);
    const token = readFileSync(tokenFile, 'utf8').trim();
    const accounts = (await api(broker.apiUrl, token, 'GET', '/client/v4/accounts')) as { id: string }[];
    const brokers = `/client/v4/accounts/${accounts[0]!.id}/pubsub/namespaces/local/brokers`;
    for (const name of ['noisy', 'steady'])
      await api(broker.apiUrl, token, 'POST', brokers, { name, authType: 'NONE' });
    if (slow !== undefined)
      await api(
        broker.apiUrl,
        token,
        'PUT',
        `${brokers}/noisy/hook/function`,
        SLOW_FUNCTION,
        'application/javascript',
      );
    const steady = await startLoadChild({
      role: 'steady',
      url: broker.tcpUrl,
      username: 'steady.local',
      rate,
      size: 64,
      topic: 'b/stream',
    });
    loads.push(steady);
    const flood = await startLoadChild({
      role: 'flood',
      url: broker.tcpUrl,
      username: 'noisy.local',
      pubs,
      size: 64,
      topic: 'a/flood',
      subscriber: true,
    });
    loads.push(flood);
    const count = async (name: string): Promise<number> =>
      ((await api(broker!.apiUrl!, token, 'GET', `${brokers}/${name}/clients?per_page=100`)) as unknown[])
        .length;
    const clients = { noisy: await count('noisy'), steady: await count('steady') };
    if (clients.steady !== 2 || clients.noisy !== pubs + 1)
      throw new Error(
        `routing: expected 2 clients on steady and ${pubs + 1} on noisy, got ${JSON.stringify(clients)}`,
      );
    // A slow function's backlog (up to --hook-max-pending messages) outlasts its flood: idle first.
    const order: Phase[] = slow !== undefined || rep % 2 === 1 ? ['idle', 'flood'] : ['flood', 'idle'];
    const phases: NoisyPhase[] = [];
    await sleep(warmupS * 1000);
    for (const phase of order) {
      if (phase === 'flood') await flood.ask('on');
      await sleep(warmupS * 1000);
      await flood.ask<FloodStats>('stats', 'stats');
      const cpu0 = cpuSnapshot(broker.pid, [steady.child.pid!, flood.child.pid!]);
      await steady.ask('measure');
      await sleep(durationS * 1000);
      const report = (await steady.ask<SteadyReport>('report', 'report'))!;
      const floodStats = (await flood.ask<FloodStats>('stats', 'stats'))!;
      const cpu = cpuDelta(cpu0, cpuSnapshot(broker.pid, [steady.child.pid!, flood.child.pid!]));
      if (phase === 'flood') await flood.ask('off');
      phases.push({
        phase,
        steady: report,
        flood: { ...floodStats, seconds: cpu.seconds },
        brokerCpuPct: cpu.brokerPct,
        otherCpuPct: cpu.otherPct,
      });
      // Let A's backlog drain before the next window.
      await sleep(1000);
    }
    return { rep, phases, clients, ...(slow ? { code: slow.code } : {}) };
  } catch (err) {
    return { rep, error: (err as Error).message, ...(slow ? { code: slow.code } : {}) };
  } finally {
    for (const l of loads) await stopChild(l.child, 1000);
    await broker?.stop();
    removeTempDir(dataDir);
  }
}

function noisyReport(runs: readonly NoisyRun[]): string[] {
  const of = (phase: Phase) => runs.flatMap((r) => r.phases?.filter((p) => p.phase === phase) ?? []);
  const rows = [
    '| broker A | B delivered msgs/s (min-max) | B sent msgs/s | B p50 ms | B p99 ms | B max ms | generator lag p99 ms | A published msgs/s | A delivered msgs/s | broker CPU % | other CPU % |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  const med = (phase: Phase, f: (p: NoisyPhase) => number | null | undefined) => median(of(phase).map(f));
  for (const phase of ['idle', 'flood'] as const) {
    const span = range(of(phase).map((p) => p.steady.deliveredPerSec));
    rows.push(
      `| ${phase === 'idle' ? 'idle' : `flooding (${floodPubs} QoS 0 publishers)`} | ${fmt(med(phase, (p) => p.steady.deliveredPerSec))} (${span ? `${fmt(span[0])}-${fmt(span[1])}` : 'n/a'}) | ${fmt(med(phase, (p) => p.steady.sentPerSec))} | ${fmt(
        med(phase, (p) => p.steady.latency.p50),
        2,
      )} | ${fmt(
        med(phase, (p) => p.steady.latency.p99),
        2,
      )} | ${fmt(
        med(phase, (p) => p.steady.latency.max),
        1,
      )} | ${fmt(
        med(phase, (p) => p.steady.lag.p99),
        2,
      )} | ${fmt(med(phase, (p) => p.flood.published / p.flood.seconds))} | ${fmt(med(phase, (p) => p.flood.delivered / p.flood.seconds))} | ${fmt(med(phase, (p) => p.brokerCpuPct))} | ${fmt(med(phase, (p) => p.otherCpuPct))} |`,
    );
  }
  const ratio = (f: (p: NoisyPhase) => number | null | undefined): number | null => {
    const a = med('flood', f);
    const b = med('idle', f);
    return a !== null && b ? a / b : null;
  };
  const rateRatio = ratio((p) => p.steady.deliveredPerSec);
  const p99Ratio = ratio((p) => p.steady.latency.p99);
  const bad = runs
    .flatMap((r) => r.phases ?? [])
    .reduce((a, p) => a + p.steady.outOfOrder + p.steady.gaps, 0);
  return [
    '## Noisy neighbour (ours)',
    '',
    `Broker A \`noisy.local\`, broker B \`steady.local\` in one server (both authType NONE, created through the admin API, reached by MQTT user name). B: 1 publisher + 1 subscriber, QoS 1, 64 B, ${fmt(rate)} msgs/s paced by a 1 ms timer that catches up; latency = receive - scheduled send time. A: ${floodPubs} publishers, QoS 0, 64 B, 32 per write as fast as the sockets take them, 1 subscriber reading. ${reps} repetitions (median; idle and flood windows alternate in order), ${warmupS} s warm-up + ${durationS} s per window.`,
    '',
    ...rows,
    '',
    `B with A flooding / A idle: delivered rate **${fmt(rateRatio, 3)}x** (goal ≥ 0.95), p99 **${fmt(p99Ratio, 2)}x** (goal < 3). B's QoS 1 stream out of order or with gaps: ${bad}.`,
    '',
  ];
}

function slowFunctionReport(runs: readonly NoisyRun[]): string[] {
  const rows = [
    '| broker code | A | B delivered msgs/s | B p50 ms | B p99 ms | B max ms | A messages through its function /s | broker CPU % |',
    '|---|---|---|---|---|---|---|---|',
  ];
  const ratios: string[] = [];
  for (const code of ['before', 'after'] as const) {
    const mine = runs.filter((r) => r.code === code);
    if (mine.length === 0) continue;
    const of = (phase: Phase) => mine.flatMap((r) => r.phases?.filter((p) => p.phase === phase) ?? []);
    const med = (phase: Phase, f: (p: NoisyPhase) => number | null | undefined) => median(of(phase).map(f));
    for (const phase of ['idle', 'flood'] as const)
      rows.push(
        `| ${code} | ${phase === 'idle' ? 'idle' : 'function busy (100 ms per call)'} | ${fmt(med(phase, (p) => p.steady.deliveredPerSec))} | ${fmt(
          med(phase, (p) => p.steady.latency.p50),
          2,
        )} | ${fmt(
          med(phase, (p) => p.steady.latency.p99),
          2,
        )} | ${fmt(
          med(phase, (p) => p.steady.latency.max),
          1,
        )} | ${fmt(med(phase, (p) => p.flood.delivered / p.flood.seconds))} | ${fmt(med(phase, (p) => p.brokerCpuPct))} |`,
      );
    const busy = med('flood', (p) => p.steady.latency.p99);
    const idle = med('idle', (p) => p.steady.latency.p99);
    ratios.push(`${code}: **${fmt(busy !== null && idle ? busy / idle : null, 2)}x**`);
  }
  return [
    '## Slow function on a neighbour broker (ours)',
    '',
    `The noisy-neighbour set-up, but broker A runs a sandboxed function that busy-loops 100 ms per call (\`--function-cpu-ms 1000\`), fed by 1 publisher flooding QoS 0 64 B (the hook's backpressure holds it to what the function takes); B (no hook): 1 publisher + 1 subscriber, QoS 1, 64 B, ${fmt(rate)} msgs/s. ${reps} repetitions (median), ${warmupS} s warm-up + ${durationS} s per window.${opts.baseline ? ` before: the broker of ${opts.baseline}; after: this tree's.` : ''}`,
    '',
    ...rows,
    '',
    `B's p99 with A's function busy / A idle (goal ≤ 1.5x): ${ratios.join(', ')}.`,
    '',
  ];
}

// ---- stalled subscriber(s) ----

interface StalledRun {
  broker: BrokerName;
  variant: string;
  rep: number;
  load?: LoadResult;
  flood?: FloodStats & { seconds: number };
  ping?: PingResult;
  rssBeforeKb?: number | null;
  rssPeakKb?: number | null;
  rssEndKb?: number | null;
  /** Stalled sockets the broker had closed by the end of the run. */
  stalledClosed?: number;
  /** stalled-many, ours: the broker's own counts over the run (/metrics), messages. */
  brokerCounts?: { received: number; sent: number; droppedCongested: number; droppedWriteBudget: number };
  capped?: boolean;
  error?: string;
}

async function openStalled(url: string, n: number, filter: string): Promise<Socket[]> {
  const sockets: Socket[] = [];
  for (let i = 0; i < n; i += 100) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(100, n - i) }, (_, j) =>
        stalledSubscriber(url, `stalled-${i + j}`, filter),
      ),
    );
    sockets.push(...batch);
  }
  return sockets;
}

async function stalledRun(name: BrokerName, variant: 'without' | 'with', rep: number): Promise<StalledRun> {
  let broker: BrokerHandle | undefined;
  let stalled: Socket[] = [];
  try {
    broker = await startBroker(name, {
      noDelay: false,
      serveArgs: ['--ws-port', '-1', ...(name === 'pubsub' ? ['--http-port', '0'] : [])],
      ...(name === 'pubsub' ? profiledRun(profiling, `stalled-${variant}-rep${rep}`) : {}),
    });
    await sleep(300);
    const rssBeforeKb = procRssKb(broker.pid);
    stalled = variant === 'with' ? await openStalled(broker.tcpUrl, 1, 'bench/fanout') : [];
    const stopRss = sampleRss(broker.pid);
    const load = await runLoadChild({
      scenario: 'fanout',
      pubs: 1,
      subs: 10,
      qos: 0,
      size,
      window: 20,
      batch: 32,
      url: broker.tcpUrl,
      brokerPid: broker.pid,
      durationS,
      warmupS,
    });
    const rss = stopRss();
    const brokerCounts = broker.apiUrl === undefined ? undefined : await countsOf(broker.apiUrl);
    if (brokerCounts !== undefined) console.error(`  ${variant} rep ${rep}: ${JSON.stringify(brokerCounts)}`);
    return {
      broker: name,
      variant,
      rep,
      load,
      brokerCounts,
      rssBeforeKb,
      rssPeakKb: rss.peakKb,
      rssEndKb: rss.endKb,
      stalledClosed: stalled.filter((s) => s.destroyed || s.readyState !== 'open').length,
    };
  } catch (err) {
    return { broker: name, variant, rep, error: (err as Error).message };
  } finally {
    for (const s of stalled) s.destroy();
    await broker?.stop();
  }
}

/** Our broker's message counts from /metrics (every broker and QoS summed). */
async function countsOf(apiUrl: string): Promise<NonNullable<StalledRun['brokerCounts']>> {
  const text = await (await fetch(`${apiUrl}/metrics`)).text();
  const sum = (name: string, label?: string): number => {
    let total = 0;
    for (const line of text.split('\n')) {
      const m = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
      if (m !== null && m[1] === name && (label === undefined || (m[2] ?? '').includes(label)))
        total += Number(m[3]);
    }
    return total;
  };
  return {
    received: sum('pubsub_messages_received_total'),
    sent: sum('pubsub_messages_sent_total'),
    droppedCongested: sum('pubsub_messages_dropped_total', 'reason="congested"'),
    droppedWriteBudget: sum('pubsub_messages_dropped_total', 'reason="write_budget"'),
  };
}

async function stalledManyRun(name: BrokerName, n: number, rep: number): Promise<StalledRun> {
  let broker: BrokerHandle | undefined;
  let stalled: Socket[] = [];
  let flood: LoadChild | undefined;
  try {
    broker = await startBroker(name, {
      noDelay: false,
      serveArgs: ['--ws-port', '-1', ...(name === 'pubsub' ? ['--http-port', '0'] : [])],
      ...(name === 'pubsub' ? profiledRun(profiling, `stalled-many-${n}-rep${rep}`) : {}),
    });
    stalled = await openStalled(broker.tcpUrl, n, '#');
    const ping = await pingerProcess(broker.tcpUrl);
    flood = await startLoadChild({
      role: 'flood',
      url: broker.tcpUrl,
      pubs: 1,
      size: 64,
      topic: 'flood/x',
      subscriber: false,
    });
    await sleep(300);
    const rssBeforeKb = procRssKb(broker.pid);
    let capped = false;
    let wake: (() => void) | undefined;
    const stopRss = sampleRss(broker.pid, (kb) => {
      if (kb > rssCapKb && !capped) {
        capped = true;
        wake?.();
      }
    });
    const started = performance.now();
    await flood.ask('on');
    await new Promise<void>((resolve) => {
      wake = resolve;
      setTimeout(resolve, (warmupS + durationS) * 1000);
    });
    await flood.ask('off');
    const stats = (await flood.ask<FloodStats>('stats', 'stats'))!;
    const result = await ping.stop();
    const rss = stopRss();
    const brokerCounts = broker.apiUrl === undefined ? undefined : await countsOf(broker.apiUrl);
    return {
      broker: name,
      variant: String(n),
      rep,
      flood: { ...stats, seconds: (performance.now() - started) / 1000 },
      ping: result,
      rssBeforeKb,
      rssPeakKb: rss.peakKb,
      rssEndKb: rss.endKb,
      stalledClosed: stalled.filter((s) => s.destroyed || s.readyState !== 'open').length,
      capped,
      ...(brokerCounts ? { brokerCounts } : {}),
    };
  } catch (err) {
    return { broker: name, variant: String(n), rep, error: (err as Error).message };
  } finally {
    if (flood) await stopChild(flood.child, 1000);
    for (const s of stalled) s.destroy();
    await broker?.stop();
  }
}

function stalledReport(runs: readonly StalledRun[], brokers: readonly BrokerName[]): string[] {
  const rows = [
    "| broker | stalled subscriber | others' msgs/s (min-max) | vs without | p99 ms | broker CPU % | RSS before MB | RSS peak growth MB | RSS end growth MB | stalled socket closed by broker |",
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const b of brokers) {
    const mine = (v: string) => runs.filter((r) => r.broker === b && r.variant === v && r.load !== undefined);
    const base = median(mine('without').map((r) => r.load!.deliveredPerSec));
    for (const v of ['without', 'with']) {
      const rs = mine(v);
      const rate = median(rs.map((r) => r.load!.deliveredPerSec));
      const span = range(rs.map((r) => r.load!.deliveredPerSec));
      rows.push(
        `| ${b} | ${v} | ${fmt(rate)} (${span ? `${fmt(span[0])}-${fmt(span[1])}` : 'n/a'}) | ${rate !== null && base ? `${fmt(rate / base, 3)}x` : 'n/a'} | ${fmt(median(rs.map((r) => r.load!.latency.p99)), 2)} | ${fmt(median(rs.map((r) => r.load!.cpu.brokerPct)))} | ${fmt(mb(median(rs.map((r) => r.rssBeforeKb))), 1)} | ${fmt(mb(median(rs.map((r) => (r.rssPeakKb ?? 0) - (r.rssBeforeKb ?? 0)))), 1)} | ${fmt(mb(median(rs.map((r) => (r.rssEndKb ?? 0) - (r.rssBeforeKb ?? 0)))), 1)} | ${v === 'with' ? `${rs.reduce((a, r) => a + (r.stalledClosed ?? 0), 0)} of ${rs.length}` : '-'} |`,
      );
    }
  }
  return [
    '## Stalled subscriber',
    '',
    `Fan-out 1 → 10, QoS 0, ${size} B, window 20 (bench/load.ts), with and without an 11th subscriber on the topic that never reads after its SUBACK. ${reps} repetitions (median; interleaved), fresh broker per run, ${warmupS} s warm-up + ${durationS} s measured; RSS (VmRSS) sampled every 100 ms from just before the stalled subscriber connects to the end of the load; growth = peak / end - before. The bytes a stalled subscriber may hold: ours \`--max-write-buffer\` (default 4 MiB; QoS 0 over it is dropped); mosquitto as the harness configures it, \`max_queued_messages 0\` (no limit).`,
    '',
    ...rows,
    '',
  ];
}

function stalledManyReport(runs: readonly StalledRun[], brokers: readonly BrokerName[]): string[] {
  const rows = [
    '| broker | non-reading `#` subscribers | published msgs/s | pings (unanswered at end) | ping p50 ms | ping p99 ms | ping max ms (worst run) | RSS before MB | RSS peak MB (worst run) | stalled closed by broker | stopped at RSS cap |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const b of brokers)
    for (const v of ['0', String(stalledSubs)]) {
      const rs = runs.filter((r) => r.broker === b && r.variant === v && r.ping !== undefined);
      if (rs.length === 0) continue;
      const worst = (f: (r: StalledRun) => number | null | undefined) => {
        const xs = rs.map(f).filter((x): x is number => typeof x === 'number');
        return xs.length > 0 ? Math.max(...xs) : null;
      };
      rows.push(
        `| ${b} | ${fmt(Number(v))} | ${fmt(median(rs.map((r) => r.flood!.published / r.flood!.seconds)))} | ${fmt(median(rs.map((r) => r.ping!.samples)))} (${fmt(median(rs.map((r) => r.ping!.unanswered)))}) | ${fmt(median(rs.map((r) => r.ping!.latency.p50)), 2)} | ${fmt(median(rs.map((r) => r.ping!.latency.p99)), 1)} | ${fmt(median(rs.map((r) => r.ping!.latency.max)), 1)} (${fmt(
          worst((r) => r.ping!.latency.max),
          1,
        )}) | ${fmt(mb(median(rs.map((r) => r.rssBeforeKb))), 1)} | ${fmt(mb(median(rs.map((r) => r.rssPeakKb))), 1)} (${fmt(mb(worst((r) => r.rssPeakKb)), 1)}) | ${fmt(median(rs.map((r) => r.stalledClosed)))} | ${rs.filter((r) => r.capped).length} of ${rs.length} |`,
      );
    }
  return [
    '## Many stalled subscribers',
    '',
    `${fmt(stalledSubs)} raw sockets subscribed to \`#\` that never read after their SUBACK (and, as the baseline, none); 1 publisher, QoS 0, 64 B, 32 per write as fast as its socket takes them; a victim client sends PINGREQ every 100 ms whether or not the earlier ones were answered (one still unanswered at the end counts as its wait so far). ${reps} repetitions (median, worst run in brackets), fresh broker per run, ${warmupS + durationS} s of flood; RSS sampled every 100 ms; a run stops early past ${fmt(rssCapKb / 1024)} MB. Ours may hold \`--max-write-buffer\` (4 MiB) per subscriber: ${fmt((stalledSubs * 4) / 1024, 1)} GiB for ${fmt(stalledSubs)}.`,
    '',
    ...rows,
    '',
  ];
}

// ---- main ----

process.on('exit', killAllChildren);
process.on('SIGINT', () => process.exit(130));
const available = BROKERS.filter((b) => {
  const info = brokerInfo(b);
  if (!info.available) console.error(`${b}: ${info.note}`);
  return info.available;
});
const results: { noisy: NoisyRun[]; stalled: StalledRun[]; stalledMany: StalledRun[] } = {
  noisy: [],
  stalled: [],
  stalledMany: [],
};
const md: string[] = [`# Noisy neighbour and stalled subscribers, ${new Date().toISOString()}`, ''];
md.push(`Command: \`node bench/neighbours.ts ${process.argv.slice(2).join(' ')}\``.replace(/ `$/, '`'), '');
if (SCENARIOS.includes('noisy')) {
  if (!available.includes('pubsub')) console.error('noisy: ours only (it needs two brokers in one server)');
  else
    for (let rep = 1; rep <= reps; rep++) {
      const run = await noisyRun(rep);
      results.noisy.push(run);
      console.error(
        `noisy #${rep}: ${run.error ?? run.phases!.map((p) => `${p.phase} ${fmt(p.steady.deliveredPerSec)} msgs/s p99 ${fmt(p.steady.latency.p99, 2)} ms (A ${fmt(p.flood.published / p.flood.seconds)} pub/s)`).join(', ')}`,
      );
    }
  md.push(
    ...noisyReport(results.noisy),
    'Noisy neighbour is ours only: mosquitto has no tenants to put side by side.',
    '',
  );
}
if (SCENARIOS.includes('slow-function')) {
  const slowRuns: NoisyRun[] = [];
  const codes = opts.baseline === undefined ? (['after'] as const) : (['before', 'after'] as const);
  for (let rep = 1; rep <= reps; rep++)
    for (const code of codes) {
      const run = await noisyRun(rep, { code });
      slowRuns.push(run);
      console.error(
        `slow-function ${code} #${rep}: ${run.error ?? run.phases!.map((p) => `${p.phase} p99 ${fmt(p.steady.latency.p99, 2)} ms (A ${fmt(p.flood.delivered / p.flood.seconds)} msgs/s)`).join(', ')}`,
      );
    }
  results.noisy.push(...slowRuns);
  md.push(...slowFunctionReport(slowRuns));
}
if (SCENARIOS.includes('stalled')) {
  for (let rep = 1; rep <= reps; rep++)
    // The order alternates between repetitions: a run second in line is not always the same variant.
    for (const b of available)
      for (const v of rep % 2 === 1 ? (['without', 'with'] as const) : (['with', 'without'] as const)) {
        const run = await stalledRun(b, v, rep);
        results.stalled.push(run);
        console.error(
          `stalled ${b} ${v} #${rep}: ${run.error ?? `${fmt(run.load!.deliveredPerSec)} msgs/s RSS ${fmt(mb(run.rssBeforeKb), 1)} -> peak ${fmt(mb(run.rssPeakKb), 1)} MB`}`,
        );
      }
  md.push(...stalledReport(results.stalled, available));
}
if (SCENARIOS.includes('stalled-many')) {
  for (let rep = 1; rep <= reps; rep++)
    for (const b of available)
      for (const n of [0, stalledSubs]) {
        const run = await stalledManyRun(b, n, rep);
        results.stalledMany.push(run);
        console.error(
          `stalled-many ${b} ${n} #${rep}: ${run.error ?? `ping p99 ${fmt(run.ping!.latency.p99, 1)} max ${fmt(run.ping!.latency.max, 1)} ms, RSS peak ${fmt(mb(run.rssPeakKb), 1)} MB${run.capped ? ' (capped)' : ''}${run.brokerCounts ? `, broker ${JSON.stringify(run.brokerCounts)}` : ''}`}`,
        );
      }
  md.push(...stalledManyReport(results.stalledMany, available));
}
const failed = [...results.noisy, ...results.stalled, ...results.stalledMany].filter(
  (r) => r.error !== undefined,
);
if (failed.length > 0) md.push(`Failed: ${failed.map((r) => `#${r.rep}: ${r.error}`).join('; ')}`, '');
console.error(`results: ${writeResults('neighbours', md.join('\n'), results)}.{md,json}`);
if (profiling.cpu || profiling.gc) console.error(`profiles: ${profiling.dir}`);
