/**
 * Micro-benchmark of TopicIndex, the subscription trie every PUBLISH goes through.
 *
 * For indexes of 1k, 10k and 100k subscriptions over device-style topics
 * (`site/{s}/device/{d}/telemetry|status`; 70% exact, 15% `site/{s}/device/+/telemetry`,
 * 5% `site/{s}/#`, 5% `site/+/device/{d}/status`, 5% members of a few
 * `$share/workers{n}/site/{s}/device/+/telemetry` groups) it measures:
 *   - insert: add/addShared calls per second, building whole indexes;
 *   - match, warm cache: match() on 1,000 recurring topics (the steady state: one map lookup);
 *   - match, cacheSize 0: a trie walk on every call;
 *   - match, unique topics: the default cache, but every topic new (walk + cache fill + flush);
 *     these are devices nobody subscribed to exactly, so they match mostly wildcards (the last
 *     column gives the subscribers per match of both topic pools);
 *   - remove: remove/removeShared calls per second, emptying whole indexes (with pruning);
 *   - heap per subscription: heapUsed growth while building one index, and what is left after
 *     removing everything (~0 when the trie is pruned; a few bytes either way are GC noise).
 * Each rate is taken over at least ~0.5 s of work (process.hrtime.bigint); the run takes ~15 s.
 *
 * Run: `npx node --expose-gc bench/topic-index.ts`. Without the flag (`npm run bench:topic-index`)
 * the heap columns read n/a: heapUsed without a full GC first mostly measures garbage.
 */
import { TopicIndex } from '../src/router/index.ts';

const SIZES = [1_000, 10_000, 100_000];
const MIN_NS = 500_000_000n;
const DEVICES_PER_SITE = 50;
const gc = (globalThis as { gc?: () => void }).gc;

interface Subscription {
  filter: string;
  key: number;
  /** Set for a shared subscription. */
  shareName?: string;
}

/** mulberry32: the same seed gives the same subscriptions and topics on every run. */
function rng(seed: number): (n: number) => number {
  let state = seed >>> 0;
  return (n) => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

function subscriptions(n: number): Subscription[] {
  const sites = Math.ceil(n / 100);
  const random = rng(n);
  const subs: Subscription[] = [];
  for (let key = 0; key < n; key++) {
    const s = random(sites);
    const d = random(DEVICES_PER_SITE);
    const kind = key % 20;
    // join() makes flat strings: a template literal's rope would be flattened, and its parts
    // freed, during the heap measurement, and be counted against the index.
    if (kind < 14)
      subs.push({ filter: ['site', s, 'device', d, kind % 2 ? 'status' : 'telemetry'].join('/'), key });
    else if (kind < 17) subs.push({ filter: ['site', s, 'device', '+', 'telemetry'].join('/'), key });
    else if (kind < 18) subs.push({ filter: ['site', s, '#'].join('/'), key });
    else if (kind < 19) subs.push({ filter: ['site', '+', 'device', d, 'status'].join('/'), key });
    else {
      const filter = ['site', s % 8, 'device', '+', 'telemetry'].join('/');
      subs.push({ filter, key, shareName: `workers${key % 4}` });
    }
  }
  return subs;
}

/** Published topics: devices of the subscribed sites, `deviceRange` ids per site. */
function topics(count: number, sites: number, deviceRange: number, seed: number): string[] {
  const random = rng(seed);
  return Array.from(
    { length: count },
    () => `site/${random(sites)}/device/${random(deviceRange)}/${random(2) ? 'status' : 'telemetry'}`,
  );
}

function build(subs: Subscription[], cacheSize?: number): TopicIndex<number, number> {
  const index = new TopicIndex<number, number>(cacheSize === undefined ? {} : { cacheSize });
  for (const s of subs) {
    if (s.shareName === undefined) index.add(s.filter, s.key, 1);
    else index.addShared(s.shareName, s.filter, s.key, 1);
  }
  return index;
}

function removeAll(index: TopicIndex<number, number>, subs: Subscription[]): void {
  for (const s of subs) {
    if (s.shareName === undefined) index.remove(s.filter, s.key);
    else index.removeShared(s.shareName, s.filter, s.key);
  }
}

/** Operations per second of `step`, which does `ops` operations and returns its own timed ns. */
function rate(ops: number, step: () => bigint): number {
  let done = 0;
  let spent = 0n;
  while (spent < MIN_NS) {
    spent += step();
    done += ops;
  }
  return (done * 1e9) / Number(spent);
}

function timed(fn: () => void): bigint {
  const start = process.hrtime.bigint();
  fn();
  return process.hrtime.bigint() - start;
}

let sink = 0;

function matchRate(index: TopicIndex<number, number>, pool: string[]): number {
  let at = 0;
  return rate(1000, () =>
    timed(() => {
      for (let i = 0; i < 1000; i++) {
        const r = index.match(pool[at]!);
        sink += r.subscribers.length + r.groups.length;
        if (++at === pool.length) at = 0;
      }
    }),
  );
}

function heapUsed(): number {
  gc?.();
  gc?.();
  return process.memoryUsage().heapUsed;
}

const fmt = (n: number): string => {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} k`;
  return n.toFixed(0);
};

// Warm up: compile the hot paths, so the first heap figure does not include code.
for (let i = 0; i < 20; i++) {
  const warmUp = subscriptions(1_000);
  const index = build(warmUp, 0);
  for (const t of topics(1_000, 10, DEVICES_PER_SITE, 0)) index.match(t);
  removeAll(index, warmUp);
}

const rows: string[][] = [];
for (const n of SIZES) {
  const subs = subscriptions(n);
  const sites = Math.ceil(n / 100);

  // Heap first, while nothing else of this size is alive.
  const before = heapUsed();
  const measured = build(subs, 0);
  const perSub = (heapUsed() - before) / n;
  removeAll(measured, subs);
  const leftPerSub = (heapUsed() - before) / n;
  sink += measured.size;

  const insert = rate(subs.length, () => {
    let index: TopicIndex<number, number> | undefined;
    const ns = timed(() => {
      index = build(subs);
    });
    sink += index!.size;
    return ns;
  });

  const index = build(subs);
  const warmPool = topics(1_000, sites, DEVICES_PER_SITE, 1);
  for (const t of warmPool) index.match(t);
  const warm = matchRate(index, warmPool);

  const coldPool = topics(10_000, sites, DEVICES_PER_SITE, 2);
  const uncached = build(subs, 0);
  const cold = matchRate(uncached, coldPool);
  let matched = 0;
  for (const t of coldPool) matched += uncached.match(t).subscribers.length;

  // Device ids far beyond the subscribed ones: (almost) every topic is new to the cache.
  const uniquePool = topics(400_000, sites, 1_000_000, 3);
  const unique = matchRate(index, uniquePool);
  let matchedUnique = 0;
  for (let i = 0; i < 10_000; i++) matchedUnique += uncached.match(uniquePool[i]!).subscribers.length;

  const remove = rate(subs.length, () => {
    const fresh = build(subs);
    return timed(() => removeAll(fresh, subs));
  });

  rows.push([
    fmt(n),
    `${fmt(insert)}/s`,
    `${fmt(warm)}/s`,
    `${fmt(cold)}/s`,
    `${fmt(unique)}/s`,
    `${fmt(remove)}/s`,
    gc === undefined ? 'n/a' : `${perSub.toFixed(0)} B`,
    gc === undefined ? 'n/a' : `${leftPerSub.toFixed(1)} B`,
    `${(matched / coldPool.length).toFixed(1)} / ${(matchedUnique / 10_000).toFixed(1)}`,
  ]);
}

const header = [
  'subscriptions',
  'insert',
  'match (warm cache)',
  'match (cacheSize 0)',
  'match (unique topics)',
  'remove',
  'heap / sub',
  'heap / sub after remove-all',
  'subscribers / match (recurring / unique)',
];
console.log(`TopicIndex benchmark, Node ${process.version}, ${process.arch}`);
console.log(
  gc === undefined
    ? 'heap figures need a full GC before each reading: run `npx node --expose-gc bench/topic-index.ts`'
    : 'heap figures taken after global.gc()',
);
console.log('');
console.log(`| ${header.join(' | ')} |`);
console.log(`|${header.map((h) => `${'-'.repeat(h.length + 1)}:`).join('|')}|`);
for (const row of rows) console.log(`| ${row.join(' | ')} |`);
if (sink === -1) console.log(sink);
