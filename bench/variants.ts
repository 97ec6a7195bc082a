/**
 * What the single-broker A/B benches share (hooks.ts: hook variants; scrape.ts: with and
 * without scraping): runs of every variant interleaved within each repetition (A B A B ...,
 * a fresh broker per run, so a drift of the machine hits every variant alike), the medians
 * table's number format, and the results files. Kills every child process on the way out.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BENCH_DIR, killAllChildren } from './brokers.ts';

export type BenchQoS = 0 | 1;

/** The load both benches measure: fan-in 10 → 1, 64 B, window 1000 (run.ts's `fanin-q*-64B`). */
export const FANIN_64B = { scenario: 'fanin', pubs: 10, subs: 1, size: 64, window: 1000, batch: 32 } as const;

/**
 * Runs `runOne` for each QoS, repetition and variant, the variants interleaved within each
 * repetition; logs `line(run)` to stderr after each run.
 */
export async function runInterleaved<V, R>(
  qosLevels: readonly BenchQoS[],
  reps: number,
  variants: readonly V[],
  runOne: (variant: V, qos: BenchQoS, rep: number) => Promise<R>,
  line: (run: R) => string,
): Promise<R[]> {
  process.on('exit', killAllChildren);
  process.on('SIGINT', () => process.exit(130));
  const runs: R[] = [];
  for (const qos of qosLevels)
    for (let rep = 1; rep <= reps; rep++)
      for (const variant of variants) {
        const run = await runOne(variant, qos, rep);
        runs.push(run);
        console.error(line(run));
      }
  return runs;
}

/** A figure for a table: `n/a` when missing, thousands separated, `digits` decimals. */
export function fmt(n: number | null | undefined, digits = 0): string {
  if (n === null || n === undefined) return 'n/a';
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

/** Writes bench/results/<name>-<ts>.{md,json} and prints the markdown; returns the files' stem. */
export function writeResults(name: string, markdown: string, runs: unknown): string {
  const dir = join(BENCH_DIR, 'results');
  mkdirSync(dir, { recursive: true });
  const stem = join(dir, `${name}-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  writeFileSync(`${stem}.md`, markdown);
  writeFileSync(`${stem}.json`, `${JSON.stringify(runs, null, 2)}\n`);
  console.log(markdown);
  return stem;
}
