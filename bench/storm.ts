/**
 * `node bench/storm.ts`: issue 20's connection storm. `--connections` (20,000) MQTT 3.1.1
 * connections opened at once, as fast as the generator can (conn-worker.ts processes, 5,000
 * each, from loopback addresses 127.0.0.2-101, every connection in flight from the start; one
 * closed before its CONNACK, e.g. expired in the pacer's queue, is opened again, up to
 * `--retries` times, as a client would), against a fresh `pubsub serve` per run with
 * `--max-connection-rate R` for each R of `--rates` (default 2000 and 0, unpaced, in the same
 * run). Meanwhile a victim connected before the storm sends PINGREQ every `--ping-ms` (10),
 * pipelined (victim.ts).
 *
 * Reported per run: connected / failed / retried, the time from the first connection to the
 * last CONNACK, the victim's round trips over that time (p50/p99/max, unanswered ones at their
 * wait so far), the broker's own largest event-loop delay over that time
 * (`nodejs_eventloop_lag_max_seconds`, read from /metrics just before and after: the scrape
 * resets them, so a ping slower than the broker's worst delay waited for its own process or the
 * machine, not for the broker's loop), the pacer's counters from /metrics (paced, expired), the broker's VmRSS before,
 * at its peak and after. The broker's and the workers' soft open-files limits are raised to
 * their hard limit when needed (never the hard limit itself); a broker whose hard limit cannot
 * hold the storm stops the run with a message saying so.
 *
 * `--profile` / `--trace-gc` run each broker with `--cpu-prof` / `--trace-gc` (files in
 * bench/results/profiles-<ts>/storm-<rate>-rep<N>.{cpuprofile,gc.log}).
 *
 * Writes bench/results/storm-<ts>.{md,json}.
 */

import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { makeRoomForFiles } from '../test/helpers/open-files.ts';
import { seriesValue } from '../test/helpers/prometheus.ts';
import { BENCH_DIR, type BrokerProfiling, killAllChildren, profiledRun, startBroker } from './brokers.ts';
import { startConnWorkers } from './conn-workers.ts';
import { procRssKb } from './proc.ts';
import { median } from './stats.ts';
import { fmt, writeResults } from './variants.ts';
import { type PingResult, pingerProcess } from './victim.ts';

const { values: opts } = parseArgs({
  options: {
    connections: { type: 'string', default: '20000' },
    rates: { type: 'string', default: '2000,0' },
    reps: { type: 'string', default: '1' },
    'ping-ms': { type: 'string', default: '10' },
    retries: { type: 'string', default: '5' },
    profile: { type: 'boolean', default: false },
    'trace-gc': { type: 'boolean', default: false },
  },
});
/** `--profile` / `--trace-gc`: each run's broker profiled into one directory (brokers.ts `profiledRun`). */
const profiling: BrokerProfiling = {
  cpu: opts.profile,
  gc: opts['trace-gc'],
  dir: join(BENCH_DIR, 'results', `profiles-${new Date().toISOString().replace(/[:.]/g, '-')}`),
};
const CONNECTIONS = Number(opts.connections);
const RATES = opts.rates.split(',').map(Number);
const REPS = Number(opts.reps);
const PING_MS = Number(opts['ping-ms']);
const RETRIES = Number(opts.retries);
const PER_WORKER = 5000;

interface Run {
  rate: number;
  rep: number;
  connections: number;
  connected: number;
  failed: number;
  retried: number;
  errors: string[];
  /** First connection opened to last CONNACK. */
  seconds: number;
  held: number;
  paced: number;
  expired: number;
  ping: PingResult;
  /** The broker's largest event-loop delay during the storm (prom-client's monitorEventLoopDelay), ms. */
  loopMaxMs: number;
  rssBeforeKb: number | null;
  rssPeakKb: number | null;
  rssAfterKb: number | null;
}

async function runOne(rate: number, rep: number): Promise<Run> {
  const broker = await startBroker('pubsub', {
    noDelay: false,
    serveArgs: ['--http-port', '0', '--max-connection-rate', String(rate)],
    ...profiledRun(profiling, `storm-${rate}-rep${rep}`),
  });
  try {
    makeRoomForFiles(broker.pid, CONNECTIONS + 10, 'the broker'); // + the victim, the scrape
    const workers = await startConnWorkers(broker.tcpUrl, CONNECTIONS, {
      perWorker: PER_WORKER,
      concurrency: CONNECTIONS,
      timeoutMs: 60_000,
      retries: RETRIES,
    });
    try {
      for (const pid of workers.pids) makeRoomForFiles(pid, PER_WORKER + 100, 'a generator worker');
      const victim = await pingerProcess(broker.tcpUrl, PING_MS);
      const rssBeforeKb = procRssKb(broker.pid);
      let rssPeakKb = rssBeforeKb;
      const sampler = setInterval(() => {
        const kb = procRssKb(broker.pid);
        if (kb !== null && (rssPeakKb === null || kb > rssPeakKb)) rssPeakKb = kb;
      }, 100);
      await (await fetch(`${broker.apiUrl}/metrics`)).text(); // restarts the event-loop delay figures
      const t0 = performance.now();
      const results = await workers.go();
      const seconds = (performance.now() - t0) / 1000;
      const ping = await victim.stop();
      clearInterval(sampler);
      const metrics = await (await fetch(`${broker.apiUrl}/metrics`)).text();
      const held = await workers.held();
      return {
        rate,
        rep,
        connections: CONNECTIONS,
        connected: results.reduce((n, r) => n + r.ok, 0),
        failed: results.reduce((n, r) => n + r.failed, 0),
        retried: results.reduce((n, r) => n + r.retried, 0),
        errors: results.flatMap((r) => r.errors),
        seconds,
        held,
        paced: seriesValue(metrics, 'pubsub_accepts_paced_total', { listener: 'mqtt' }),
        expired: seriesValue(metrics, 'pubsub_accepts_expired_total', { listener: 'mqtt' }),
        ping,
        loopMaxMs: seriesValue(metrics, 'nodejs_eventloop_lag_max_seconds', {}) * 1000,
        rssBeforeKb,
        rssPeakKb,
        rssAfterKb: procRssKb(broker.pid),
      };
    } finally {
      await workers.close();
    }
  } finally {
    await broker.stop();
  }
}

const mb = (kb: number | null): number | null => (kb === null ? null : kb / 1024);

function report(runs: Run[]): string {
  const lines = [
    `# Connection storm: ${fmt(CONNECTIONS)} connections at once`,
    '',
    `${REPS} run(s) per rate (medians; max: the worst run); victim PINGREQ every ${PING_MS} ms; failed connections retried up to ${RETRIES} times.`,
    '',
    '| --max-connection-rate | connected (failed) | retried | time to connect all s | conn/s | paced | expired | victim pings (unanswered) | ping p50 ms | ping p99 ms | ping max ms | broker loop delay max ms | RSS before → peak → after MB | KB / conn |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const rate of RATES) {
    const rs = runs.filter((r) => r.rate === rate);
    const m = (f: (r: Run) => number | null): number | null => median(rs.map(f));
    lines.push(
      `| ${rate === 0 ? 'unpaced' : fmt(rate)} | ${fmt(m((r) => r.connected))} (${fmt(m((r) => r.failed))}) | ${fmt(m((r) => r.retried))} | ${fmt(
        m((r) => r.seconds),
        1,
      )} | ${fmt(m((r) => r.connected / r.seconds))} | ${fmt(m((r) => r.paced))} | ${fmt(m((r) => r.expired))} | ${fmt(m((r) => r.ping.samples))} (${fmt(m((r) => r.ping.unanswered))}) | ${fmt(
        m((r) => r.ping.latency.p50),
        2,
      )} | ${fmt(
        m((r) => r.ping.latency.p99),
        1,
      )} | ${fmt(Math.max(...rs.map((r) => r.ping.latency.max ?? 0)), 1)} | ${fmt(Math.max(...rs.map((r) => r.loopMaxMs)), 1)} | ${fmt(mb(m((r) => r.rssBeforeKb)))} → ${fmt(mb(m((r) => r.rssPeakKb)))} → ${fmt(mb(m((r) => r.rssAfterKb)))} | ${fmt(
        m((r) =>
          r.rssAfterKb !== null && r.rssBeforeKb !== null
            ? (r.rssAfterKb - r.rssBeforeKb) / r.connected
            : null,
        ),
        2,
      )} |`,
    );
  }
  const errors = [...new Set(runs.flatMap((r) => r.errors))];
  if (errors.length > 0) lines.push('', `Failed attempts: ${errors.join('; ')}`);
  return `${lines.join('\n')}\n`;
}

process.on('exit', killAllChildren);
process.on('SIGINT', () => process.exit(130));
const runs: Run[] = [];
try {
  for (let rep = 1; rep <= REPS; rep++)
    for (const rate of RATES) {
      const run = await runOne(rate, rep);
      runs.push(run);
      console.error(
        `rate ${rate} #${rep}: ${run.connected}/${CONNECTIONS} in ${run.seconds.toFixed(1)} s (retried ${run.retried}, expired ${run.expired}), ping p99 ${fmt(run.ping.latency.p99, 1)} max ${fmt(run.ping.latency.max, 1)} ms`,
      );
    }
} catch (err) {
  console.error(`storm: ${(err as Error).message}`);
  process.exit(1);
}
writeResults('storm', report(runs), runs);
if (profiling.cpu || profiling.gc) console.error(`profiles: ${profiling.dir}`);
