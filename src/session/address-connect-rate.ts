/**
 * CONNECTs per second per source address (`--max-address-connect-rate`), for the connection
 * guard: a token bucket of `rate` a second holding as many, per source (an IPv4 address, or the
 * /64 of an IPv6 address, as auth/failure-limiter.ts counts them). A CONNECT takes a token; none
 * left: refused. A refused CONNECT takes none, so a source that keeps trying still gets `rate` a
 * second through.
 *
 * Bounded memory: the table keeps its entries in the order they were last used, and each CONNECT
 * drops, from the old end, the entries whose bucket has refilled (1 s after their last use: a
 * full bucket is the same as none) and the oldest past MAX_TRACKED_ADDRESSES. So it holds at most
 * the sources that connected in the last second, and never more than the cap. Off (rate 0), it
 * holds nothing and costs one compare per CONNECT.
 */
import { sourceKey } from '../auth/index.ts';

/** Sources tracked at most (about 100 bytes each); past it the least recently used is forgotten. */
export const MAX_TRACKED_ADDRESSES = 100_000;

/** A token bucket of `rate` a second holding as many: its tokens as of `at` (ms). */
export interface Bucket {
  tokens: number;
  at: number;
}

/** Brings `bucket` up to `now`: the tokens earned since `at`, at most `rate`. */
export function refill(bucket: Bucket, rate: number, now: number): void {
  bucket.tokens = Math.min(rate, bucket.tokens + ((now - bucket.at) * rate) / 1000);
  bucket.at = now;
}

export class AddressConnectRate {
  /** CONNECTs per second per source; 0: off. */
  readonly rate: number;
  readonly #maxTracked: number;
  /** Insertion order is recency of use: the first entry is the oldest. */
  readonly #buckets = new Map<string, Bucket>();

  constructor(rate: number, maxTracked = MAX_TRACKED_ADDRESSES) {
    this.rate = rate;
    this.#maxTracked = maxTracked;
  }

  /** Sources on record now. */
  get tracked(): number {
    return this.#buckets.size;
  }

  /** Whether a CONNECT from `address` is within its rate (it then spends a token). */
  take(address: string, now: number = Date.now()): boolean {
    const rate = this.rate;
    if (rate === 0) return true;
    const key = sourceKey(address);
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) bucket = { tokens: rate, at: now };
    else {
      this.#buckets.delete(key);
      refill(bucket, rate, now);
    }
    this.#buckets.set(key, bucket);
    this.#sweep(now);
    if (bucket.tokens < 1) return false;
    bucket.tokens--;
    return true;
  }

  /** Drops refilled buckets from the old end, and the oldest past the cap. */
  #sweep(now: number): void {
    for (const [key, bucket] of this.#buckets) {
      if (now - bucket.at < 1000 && this.#buckets.size <= this.#maxTracked) return;
      this.#buckets.delete(key);
    }
  }
}
