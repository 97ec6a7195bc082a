/**
 * Latency histogram with ~1 % relative resolution (log buckets over microseconds, exact max)
 * and small helpers for medians and ranges over repetitions.
 */

const SCALE = 100; // buckets per e-fold: bucket width ~1 %
const BUCKETS = 2400; // up to e^24 us, far beyond any bounded run

export class LatencyHistogram {
  readonly counts = new Float64Array(BUCKETS);
  count = 0;
  maxUs = 0;

  recordMs(ms: number): void {
    const us = ms > 0 ? ms * 1000 : 0;
    let i = Math.floor(Math.log1p(us) * SCALE);
    if (i >= BUCKETS) i = BUCKETS - 1;
    this.counts[i]!++;
    this.count++;
    if (us > this.maxUs) this.maxUs = us;
  }

  reset(): void {
    this.counts.fill(0);
    this.count = 0;
    this.maxUs = 0;
  }

  merge(other: { counts: ArrayLike<number>; count: number; maxUs: number }): void {
    for (let i = 0; i < BUCKETS; i++) this.counts[i]! += other.counts[i] ?? 0;
    this.count += other.count;
    if (other.maxUs > this.maxUs) this.maxUs = other.maxUs;
  }

  /** Percentile (0..100) in milliseconds; null when empty. */
  percentileMs(p: number): number | null {
    if (this.count === 0) return null;
    const target = Math.max(1, Math.ceil((p / 100) * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= target) return Math.min(Math.expm1((i + 0.5) / SCALE), this.maxUs) / 1000;
    }
    return this.maxUs / 1000;
  }

  summary(): LatencySummary {
    return {
      count: this.count,
      p50: this.percentileMs(50),
      p99: this.percentileMs(99),
      max: this.count === 0 ? null : this.maxUs / 1000,
    };
  }

  /** Sparse form for sending between processes. */
  toJSON(): { buckets: [number, number][]; count: number; maxUs: number } {
    const buckets: [number, number][] = [];
    for (let i = 0; i < BUCKETS; i++) if (this.counts[i]! > 0) buckets.push([i, this.counts[i]!]);
    return { buckets, count: this.count, maxUs: this.maxUs };
  }

  static fromJSON(j: { buckets: [number, number][]; count: number; maxUs: number }): LatencyHistogram {
    const h = new LatencyHistogram();
    for (const [i, n] of j.buckets) h.counts[i] = n;
    h.count = j.count;
    h.maxUs = j.maxUs;
    return h;
  }
}

export interface LatencySummary {
  count: number;
  /** Milliseconds. */
  p50: number | null;
  p99: number | null;
  max: number | null;
}

export function median(values: readonly (number | null | undefined)[]): number | null {
  const v = values
    .filter((x): x is number => typeof x === 'number' && Number.isFinite(x))
    .sort((a, b) => a - b);
  if (v.length === 0) return null;
  const mid = v.length >> 1;
  return v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

export function range(values: readonly (number | null | undefined)[]): [number, number] | null {
  const v = values.filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
  if (v.length === 0) return null;
  return [Math.min(...v), Math.max(...v)];
}
