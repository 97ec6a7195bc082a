/**
 * `npm run soak`: the long hostile-input soak (issue 20; docs/limits.md#hostile-input-soak).
 * Starts `pubsub serve` (MQTT on 127.0.0.1, port 0, a fresh SQLite data directory), connects the
 * well-behaved MQTT.js clients of test/helpers/fuzz-soak.ts, warms up, plays `--cases` fuzz cases
 * from test/helpers/mqtt-fuzz.ts, then checks what the short test checks: every QoS 1/2 message
 * delivered (QoS 2 exactly once, in order), a fresh v3.1/v3.1.1/v5 round trip, RSS back within
 * `--rss-margin-mb` of the warmed-up figure, the live V8 heap after a full GC within
 * `--heap-margin-mb` of its warmed-up figure, no error/fatal/uncaught line in the server's log.
 * Prints the figures and exits 1 on any failure, with each failing case's seed and bytes.
 *
 *   npm run soak -- --cases 100000 --seed 7 --concurrency 32
 *   npm run soak -- --seed 7 --from 4242 --cases 1     # replay one case
 */
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import {
  isProblemLogLine,
  procRssKb,
  refusalsByReason,
  roundTrip,
  runFuzz,
  type StateGauges,
  stateGauges,
  WellBehavedClients,
} from '../test/helpers/fuzz-soak.ts';
import { killAllChildren, makeTempDir, REPO_DIR, spawnTracked, stopChild } from './brokers.ts';

const { values: opts } = parseArgs({
  options: {
    cases: { type: 'string', default: '100000' },
    seed: { type: 'string' },
    from: { type: 'string', default: '0' },
    concurrency: { type: 'string', default: '32' },
    'warmup-cases': { type: 'string', default: '1000' },
    rate: { type: 'string', default: '100' },
    'rss-margin-mb': { type: 'string', default: '128' },
    'heap-margin-mb': { type: 'string', default: '16' },
    'linger-ms': { type: 'string', default: '50' },
    'heap-mb': { type: 'string', default: '128' },
  },
});

const cases = Number(opts.cases);
const seed = opts.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(opts.seed);
const from = Number(opts.from);
const concurrency = Number(opts.concurrency);
const warmupCases = Math.min(Number(opts['warmup-cases']), from > 0 ? 0 : cases);
const rssMarginKb = Number(opts['rss-margin-mb']) * 1024;

process.on('exit', killAllChildren);
process.on('SIGINT', () => process.exit(130));
process.on('SIGTERM', () => process.exit(143));

const dataDir = join(makeTempDir('pubsub-soak-'), 'data');
const server = spawnTracked(
  process.execPath,
  [
    // A capped heap: V8 collects instead of growing, so RSS measures what is held, and a leak
    // ends in an out-of-memory crash the soak reports instead of passing for heap headroom.
    `--max-old-space-size=${opts['heap-mb']}`,
    // The live heap after each full collection, to tell heap growth from native growth.
    '--trace-gc',
    join(REPO_DIR, 'src/cli.ts'),
    'serve',
    ...['--host', '127.0.0.1', '--port', '0', '--ws-port', '-1', '--http-port', '0'],
    ...['--data-dir', dataDir, '--log-level', 'warn'],
    // The brute-force limiter would ban the fuzzer's addresses and end its cases at CONNECT.
    ...['--auth-failure-limit', '0'],
  ],
  { cwd: REPO_DIR, env: { ...process.env, PUBSUB_LOG_LEVEL: 'warn' } },
);
let exited: string | undefined;
server.once('exit', (code, signal) => (exited = `the server exited (${code ?? signal})`));
const logLevels = new Map<string, number>();
const problemLines: string[] = [];
let stderr = '';
server.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-20_000)));
let apiUrl = '';
/** V8 heap in use after the latest full (mark-compact) collection, from --trace-gc. */
let heapAfterFullGcMb = 0;
const url = await new Promise<string>((resolve, reject) => {
  const lines = createInterface({ input: server.stdout! });
  lines.on('line', (line) => {
    const listening = /^pubsub: mqtt listening on (mqtt:\/\/\S+)$/.exec(line);
    if (listening !== null) resolve(listening[1]!);
    apiUrl ||= /^pubsub: admin API listening on (\S+)$/.exec(line)?.[1] ?? '';
    const fullGc = /Mark-Compact[^>]*-> ([\d.]+) \(/.exec(line);
    if (fullGc !== null) {
      heapAfterFullGcMb = Number(fullGc[1]);
      return;
    }
    if (/ms: Scavenge/.test(line)) return;
    const level = /"level":(\d+)/.exec(line)?.[1] ?? 'other';
    logLevels.set(level, (logLevels.get(level) ?? 0) + 1);
    if (isProblemLogLine(line) && problemLines.length < 20) problemLines.push(line);
  });
  server.once('exit', () => reject(new Error(`the server did not start\n${stderr}`)));
});
const port = Number(new URL(url).port);
const pid = server.pid!;

const failures: string[] = [];
const clients = await WellBehavedClients.start(url, `soak/${seed}`);
clients.publish(Number(opts.rate));
const healthy = (): string | undefined => exited ?? clients.unwell();
const lingerMs = Number(opts['linger-ms']);
console.log(
  `soak: seed ${seed}, ${cases} cases from ${from}, concurrency ${concurrency}, server pid ${pid} (heap cap ${opts['heap-mb']} MB)`,
);

const warm = await runFuzz({ port, seed, from, count: warmupCases, concurrency, lingerMs, healthy });
failures.push(...warm.failures);
await new Promise((resolve) => setTimeout(resolve, 1000));
const rssWarm = procRssKb(pid) ?? 0;
const gaugesWarm = await stateGauges(apiUrl);
const heapWarmMb = heapAfterFullGcMb;
let rssPeak = rssWarm;
let rssHalf = 0;
const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, procRssKb(pid) ?? 0)), 500);

const started = Date.now();
const stats = await runFuzz({
  port,
  seed,
  from: from + warmupCases,
  count: cases - warmupCases,
  concurrency,
  lingerMs,
  healthy,
  onProgress: (done) => {
    if (done === Math.floor((cases - warmupCases) / 2000) * 1000) rssHalf = procRssKb(pid) ?? 0;
    if (done % 10_000 === 0)
      console.log(
        `  ${done} cases, ${((Date.now() - started) / 1000).toFixed(0)} s, RSS ${((procRssKb(pid) ?? 0) / 1024).toFixed(0)} MB`,
      );
  },
});
const seconds = (Date.now() - started) / 1000;
clearInterval(sampler);
failures.push(...stats.failures);
if (stats.stopped !== undefined) failures.push(`stopped early: ${stats.stopped}`);

const stream = await clients.stop();
failures.push(...stream.problems);
if (exited === undefined) {
  for (const version of [3, 4, 5] as const)
    await roundTrip(url, version).catch((err: Error) => failures.push(err.message));
}
// RSS settles as closed connections are collected: give it up to 15 s.
let rssAfter = procRssKb(pid) ?? 0;
for (let i = 0; i < 30 && rssAfter > rssWarm + rssMarginKb; i++) {
  await new Promise((resolve) => setTimeout(resolve, 500));
  rssAfter = procRssKb(pid) ?? 0;
}
const refused = exited === undefined ? await refusalsByReason(apiUrl) : {};
let gaugesAfter: StateGauges | undefined;
for (let i = 0; i < 50 && exited === undefined; i++) {
  gaugesAfter = await stateGauges(apiUrl);
  if (gaugesAfter.pubsub_connections === 0) break;
  await new Promise((resolve) => setTimeout(resolve, 200));
}
if (gaugesAfter !== undefined && gaugesAfter.pubsub_connections !== 0)
  failures.push(`${gaugesAfter.pubsub_connections} connections still counted 10 s after every client left`);
if (rssAfter > rssWarm + rssMarginKb)
  failures.push(`RSS ${rssAfter} kB is more than ${rssMarginKb} kB over the warmed-up ${rssWarm} kB`);
const heapMarginMb = Number(opts['heap-margin-mb']);
if (heapAfterFullGcMb > heapWarmMb + heapMarginMb)
  failures.push(
    `the live V8 heap after a full GC is ${heapAfterFullGcMb} MB, more than ${heapMarginMb} MB over the warmed-up ${heapWarmMb} MB`,
  );
failures.push(...problemLines.map((l) => `server log: ${l}`));
if (/uncaught/i.test(stderr)) failures.push(`server stderr: ${stderr}`);
await stopChild(server, 6000);

const mb = (kb: number): string => `${(kb / 1024).toFixed(0)} MB`;
console.log(
  [
    `cases         ${warmupCases + stats.cases} (${warmupCases} warm-up), seed ${seed}, concurrency ${concurrency}`,
    `duration      ${seconds.toFixed(1)} s, ${(stats.cases / seconds).toFixed(0)} cases/s`,
    `server        closed ${stats.closedByServer} connections itself, refused ${stats.refusedAtConnect} valid-looking CONNECTs, sent ${mb(stats.bytesReceived / 1024)}`,
    `stream        ${stream.sent} messages per stream (QoS 1 and QoS 2); received ${JSON.stringify(stream.received)}`,
    `RSS           after warm-up ${mb(rssWarm)}, half-way ${mb(rssHalf)}, peak ${mb(rssPeak)}, after ${mb(rssAfter)} (margin ${mb(rssMarginKb)})`,
    `V8 heap       after the last full GC: at warm-up ${heapWarmMb} MB, at the end ${heapAfterFullGcMb} MB (cap ${opts['heap-mb']} MB)`,
    `state         after warm-up ${JSON.stringify(gaugesWarm)}\n              after         ${JSON.stringify(gaugesAfter)}`,
    `refused       CONNECTs by reason ${JSON.stringify(refused)}`,
    `log lines     ${JSON.stringify(Object.fromEntries(logLevels))} (by pino level)`,
    failures.length === 0
      ? 'result        pass'
      : `result        FAIL (${failures.length})\n\n${failures.join('\n\n')}`,
  ].join('\n'),
);
process.exit(failures.length === 0 ? 0 : 1);
