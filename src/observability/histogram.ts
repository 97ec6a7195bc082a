/**
 * A cumulative histogram in plain numbers: fixed upper bounds, a count per bucket, a sum and a
 * count, as Prometheus defines a histogram. Whoever times something (a store commit, a hook
 * call) observes into one of these; the metrics endpoint reads it when scraped (src/admin/
 * metrics.ts), so the code being timed depends on no metrics library and pays one loop over
 * a dozen bounds per observation, never an allocation.
 */

/** Seconds, from 0.5 ms to 10 s: the range of a group commit and of an on-publish hook call. */
export const SECONDS_BUCKETS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

export class DurationHistogram {
  /** Upper bounds, ascending; the `+Inf` bucket is `count`. */
  readonly bounds: readonly number[];
  /** Observations at or below each bound (not cumulative: one bucket each). */
  readonly #perBucket: Float64Array;
  sum = 0;
  count = 0;

  constructor(bounds: readonly number[] = SECONDS_BUCKETS) {
    this.bounds = bounds;
    this.#perBucket = new Float64Array(bounds.length);
  }

  observe(value: number): void {
    this.sum += value;
    this.count++;
    const bounds = this.bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= bounds[i]!) {
        this.#perBucket[i]!++;
        return;
      }
    }
  }

  /** Observations at or below `bounds[i]`, the cumulative count Prometheus expects. */
  cumulative(): number[] {
    const out: number[] = [];
    let total = 0;
    for (let i = 0; i < this.#perBucket.length; i++) {
      total += this.#perBucket[i]!;
      out.push(total);
    }
    return out;
  }
}
