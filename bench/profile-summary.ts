/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`, e.g. `npm run bench -- --profile`):
 * self time per function, as % of all samples and % of non-idle samples, plus self time per
 * source file.
 *
 *   node bench/profile-summary.ts <file.cpuprofile> [--top 25]
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_DIR } from './brokers.ts';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '25' } },
});
if (positionals.length === 0) {
  process.stderr.write('usage: node bench/profile-summary.ts <file.cpuprofile> [--top N]\n');
  process.exit(2);
}

for (const file of positionals) {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const keyOf = (id: number): string => {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    const path = url.startsWith('file://') ? relative(REPO_DIR, new URL(url).pathname) : url;
    return `${functionName || '(anonymous)'} ${path ? `${path}:${lineNumber + 1}` : ''}`.trim();
  };
  // Inclusive (total) time: every distinct function on the sampled stack.
  const totalUs = new Map<string, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i + 1] ?? 0;
    const seen = new Set<string>();
    for (let id: number | undefined = profile.samples[i]; id !== undefined; id = parent.get(id)) {
      const key = keyOf(id);
      if (key === '(root)' || seen.has(key)) continue;
      seen.add(key);
      totalUs.set(key, (totalUs.get(key) ?? 0) + dt);
    }
  }
  const selfUs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    // timeDeltas[i] is the time since the previous sample; attribute the next delta to this one.
    const dt = profile.timeDeltas[i + 1] ?? 0;
    selfUs.set(id, (selfUs.get(id) ?? 0) + dt);
  }
  const fns = new Map<string, number>();
  const files = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const [id, us] of selfUs) {
    const { functionName, url } = byId.get(id)!.callFrame;
    total += us;
    if (functionName === '(idle)') {
      idle += us;
      continue;
    }
    const path = url.startsWith('file://') ? relative(REPO_DIR, new URL(url).pathname) : url;
    const fn = keyOf(id);
    fns.set(fn, (fns.get(fn) ?? 0) + us);
    const key = path || functionName;
    files.set(key, (files.get(key) ?? 0) + us);
  }
  const busy = total - idle;
  const pct = (us: number, of: number): string => `${((us / of) * 100).toFixed(1)}%`.padStart(6);
  const top = Number(values.top);
  process.stdout.write(
    `${file}\n  ${(total / 1e6).toFixed(2)} s sampled, ${(busy / 1e6).toFixed(2)} s busy (${pct(busy, total).trim()}), ` +
      `${profile.samples.length} samples\n\n  self time by function (% of busy, % of all):\n`,
  );
  for (const [fn, us] of [...fns].sort((a, b) => b[1] - a[1]).slice(0, top))
    process.stdout.write(`  ${pct(us, busy)} ${pct(us, total)}  ${fn}\n`);
  process.stdout.write('\n  total (inclusive) time, functions of src/ and node: internals (% of busy):\n');
  for (const [fn, us] of [...totalUs]
    .filter(([k]) => /src\/|node:|writev|garbage/.test(k))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top))
    process.stdout.write(`  ${pct(us, busy)}  ${fn}\n`);
  process.stdout.write('\n  self time by file (% of busy):\n');
  for (const [f, us] of [...files].sort((a, b) => b[1] - a[1]).slice(0, 15))
    process.stdout.write(`  ${pct(us, busy)}  ${f}\n`);
  process.stdout.write('\n');
}
