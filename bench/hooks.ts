/**
 * `npm run bench:hooks`: what an on-publish hook costs. Fan-in 10 → 1 at QoS 0 and 1, 64 B,
 * through our broker three ways: no hook, a pass-through sandboxed function
 * (`return messages`), and a pass-through webhook (bench/hook-server.ts, its own process).
 * Interleaved (none, function, webhook, none, ...), a fresh broker per run, medians of --reps
 * (default 3). Prints a markdown table and writes bench/results/hooks-<ts>.{md,json}.
 * `--only none,function` runs some of the variants; `--qos 0` one QoS; `--baseline DIR` runs each
 * variant also with the broker of another checkout (e.g. the commit before a change), labelled
 * `before`, interleaved with this tree's (`after`), so both sides come from one run;
 * `--profile` runs the broker with --cpu-prof
 * (profiles in bench/results/profiles-hooks-<ts>/, summarise with bench/profile-summary.ts).
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  adminApi as api,
  BENCH_DIR,
  makeTempDir,
  REPO_DIR,
  removeTempDir,
  spawnTracked,
  stopChild,
} from './brokers.ts';
import type { LoadResult } from './load.ts';
import { runLoadChild } from './load-child.ts';
import { procCpuTicks } from './proc.ts';
import { median } from './stats.ts';
import { FANIN_64B, fmt, runInterleaved, writeResults } from './variants.ts';

const { values: opts } = parseArgs({
  options: {
    reps: { type: 'string', default: '3' },
    duration: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '1' },
    only: { type: 'string' },
    qos: { type: 'string', default: '0,1' },
    baseline: { type: 'string' },
    profile: { type: 'boolean', default: false },
  },
});
const profileDir = join(
  BENCH_DIR,
  'results',
  `profiles-hooks-${new Date().toISOString().replace(/[:.]/g, '-')}`,
);
const reps = Number(opts.reps);
const durationS = Number(opts.duration);
const warmupS = Number(opts.warmup);

type Hook = 'none' | 'function' | 'webhook';
/** A hook, run by this tree's broker (`after`) or by the `--baseline` checkout's (`before`). */
interface Variant {
  hook: Hook;
  code: 'after' | 'before';
}
const HOOKS: Hook[] = (['none', 'function', 'webhook'] as const).filter(
  (v) => opts.only === undefined || opts.only.split(',').includes(v),
);
const VARIANTS: Variant[] = [
  ...(opts.baseline === undefined ? [] : HOOKS.map((hook) => ({ hook, code: 'before' as const }))),
  ...HOOKS.map((hook) => ({ hook, code: 'after' as const })),
];
const label = (v: Variant): string => (opts.baseline === undefined ? v.hook : `${v.hook} (${v.code})`);
const QOS = opts.qos.split(',').map(Number) as (0 | 1)[];

interface Run {
  variant: Variant;
  qos: 0 | 1;
  rep: number;
  load?: LoadResult;
  /** Webhook process CPU, % of one core over the whole run. */
  hookCpuPct?: number;
  /** Hook metrics after the run. */
  hook?: { calls: number; messages: number; failures: number; lastError?: string; p50: number; p99: number };
  error?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function waitForLine(child: ChildProcess, re: RegExp, ms = 15_000): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`no ${re} within ${ms} ms`)), ms);
    child.stdout!.on('data', (c: Buffer) => {
      buf += c.toString();
      const m = re.exec(buf);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    });
    child.once('exit', (code) => reject(new Error(`exited with ${code}`)));
  });
}

async function runOne(variant: Variant, qos: 0 | 1, rep: number): Promise<Run> {
  const repo = variant.code === 'before' ? opts.baseline! : REPO_DIR;
  const dataDir = makeTempDir('bench-hooks-');
  const broker = spawnTracked(
    process.execPath,
    [
      ...(opts.profile
        ? [
            '--cpu-prof',
            `--cpu-prof-dir=${profileDir}`,
            `--cpu-prof-name=${variant.hook}-${variant.code}-q${qos}-${rep}.cpuprofile`,
          ]
        : []),
      join(repo, 'src/cli.ts'),
      'serve',
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--http-port',
      '0',
      '--data-dir',
      dataDir,
      '--log-level',
      'warn',
      '--ws-port',
      '-1',
    ],
    { cwd: REPO_DIR },
  );
  let hookServer: ChildProcess | undefined;
  try {
    const [, url] = (await waitForLine(broker, /listening on (mqtt:\/\/\S+)/)) as unknown as [string, string];
    await sleep(300);
    const apiUrl = readFileSync(join(dataDir, 'api-url'), 'utf8').trim();
    const token = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
    const accounts = (await api(apiUrl, token, 'GET', '/client/v4/accounts')) as { id: string }[];
    const brokerPath = `/client/v4/accounts/${accounts[0]!.id}/pubsub/namespaces/local/brokers/default`;
    let hookTicks0 = 0;
    if (variant.hook === 'function') {
      await api(
        apiUrl,
        token,
        'PUT',
        `${brokerPath}/hook/function`,
        'export function onPublish(messages) { return messages; }',
        'application/javascript',
      );
    } else if (variant.hook === 'webhook') {
      hookServer = spawnTracked(process.execPath, [join(BENCH_DIR, 'hook-server.ts')], { cwd: REPO_DIR });
      const [, hookUrl] = (await waitForLine(hookServer, /listening on (\S+)/)) as unknown as [
        string,
        string,
      ];
      await api(apiUrl, token, 'PATCH', brokerPath, { on_publish: { url: hookUrl } });
      hookTicks0 = procCpuTicks(hookServer.pid!) ?? 0;
    }
    const started = performance.now();
    const load = await runLoadChild({ ...FANIN_64B, qos, url, brokerPid: broker.pid!, durationS, warmupS });
    const run: Run = { variant, qos, rep, load };
    if (hookServer !== undefined) {
      const seconds = (performance.now() - started) / 1000;
      run.hookCpuPct = Math.round(
        (((procCpuTicks(hookServer.pid!) ?? 0) - hookTicks0) / 100 / seconds) * 100,
      );
    }
    if (variant.hook !== 'none') {
      const view = (await api(apiUrl, token, 'GET', `${brokerPath}/hook`)) as {
        metrics: {
          calls: number;
          messages: number;
          failures: number;
          lastErrors: { message: string }[];
          latencyMs: { p50: number; p99: number };
        };
      };
      run.hook = {
        calls: view.metrics.calls,
        failures: view.metrics.failures,
        ...(view.metrics.lastErrors.length > 0 ? { lastError: view.metrics.lastErrors.at(-1)!.message } : {}),
        messages: view.metrics.messages,
        p50: view.metrics.latencyMs.p50,
        p99: view.metrics.latencyMs.p99,
      };
    }
    return run;
  } catch (err) {
    return { variant, qos, rep, error: (err as Error).message };
  } finally {
    if (hookServer) await stopChild(hookServer, 2000);
    await stopChild(broker, 6000);
    removeTempDir(dataDir);
  }
}

async function main(): Promise<void> {
  const runs = await runInterleaved(QOS, reps, VARIANTS, runOne, (run) => {
    const l = run.load;
    return `${label(run.variant)} q${run.qos} #${run.rep}: ${run.error ?? `${fmt(l?.deliveredPerSec)} msgs/s p99 ${fmt(l?.latency.p99, 1)} ms cpu ${fmt(l?.cpu.brokerPct)} %${run.hookCpuPct !== undefined ? ` hook ${run.hookCpuPct} %` : ''} lost ${l?.checks.lost} ooo ${l?.checks.outOfOrder}${run.hook?.failures ? ` hook failures ${run.hook.failures} (${run.hook.lastError})` : ''}`}`;
  });
  const rows: string[] = [
    '| QoS | hook | delivered msgs/s | vs no hook | p50 ms | p99 ms | broker CPU % | webhook process CPU % | msgs per hook call | hook call p99 ms | lost / out of order |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const qos of QOS) {
    for (const variant of VARIANTS) {
      // Each code's hooks against the same code's "no hook".
      const base = median(
        runs
          .filter((r) => r.qos === qos && r.variant.hook === 'none' && r.variant.code === variant.code)
          .map((r) => r.load?.deliveredPerSec),
      );
      const mine = runs.filter((r) => r.qos === qos && r.variant === variant && r.load !== undefined);
      const rate = median(mine.map((r) => r.load!.deliveredPerSec));
      const perCall = median(
        mine.map((r) => (r.hook && r.hook.calls > 0 ? r.hook.messages / r.hook.calls : null)),
      );
      rows.push(
        `| ${qos} | ${label(variant)} | ${fmt(rate)} | ${rate !== null && base ? `${fmt(rate / base, 2)}x` : 'n/a'} | ${fmt(median(mine.map((r) => r.load!.latency.p50)), 2)} | ${fmt(median(mine.map((r) => r.load!.latency.p99)), 2)} | ${fmt(median(mine.map((r) => r.load!.cpu.brokerPct)))} | ${variant.hook === 'webhook' ? fmt(median(mine.map((r) => r.hookCpuPct))) : '-'} | ${variant.hook === 'none' ? '-' : fmt(perCall, 1)} | ${variant.hook === 'none' ? '-' : fmt(median(mine.map((r) => r.hook?.p99)), 2)} | ${mine.reduce((a, r) => a + r.load!.checks.lost, 0)} / ${mine.reduce((a, r) => a + r.load!.checks.outOfOrder, 0)} |`,
      );
    }
  }
  const failed = runs.filter((r) => r.error !== undefined);
  const md = [
    `# On-publish hook cost, ${new Date().toISOString()}`,
    '',
    `Fan-in 10 → 1, 64 B, window 1000, ${reps} repetitions (median), ${warmupS} s warm-up + ${durationS} s measured; defaults (--hook-batch-size 100, --hook-batch-window-ms 2, --hook-concurrency 4, --hook-ack after).`,
    ...(opts.baseline === undefined
      ? []
      : [
          '',
          `before: the broker of ${opts.baseline}; after: this tree's. Each row's "vs no hook" is against the same code's no-hook row.`,
        ]),
    '',
    ...rows,
    ...(failed.length > 0
      ? [
          '',
          `Failed runs: ${failed.map((r) => `${label(r.variant)} q${r.qos} #${r.rep}: ${r.error}`).join('; ')}`,
        ]
      : []),
    '',
  ].join('\n');
  writeResults('hooks', md, runs);
}

await main();
