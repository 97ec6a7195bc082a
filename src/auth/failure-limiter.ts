/**
 * Brute-force limiter: failed authentications (admin API tokens, MQTT CONNECT credentials)
 * counted per source address, answered first with growing delays and then with refusal for a
 * cool-down. One instance serves the whole process, so the API and every MQTT listener share
 * an address's count.
 *
 * Algorithm, per source (an IPv4 address, or the /64 of an IPv6 address: one host usually owns a
 * whole /64, so counting single IPv6 addresses would give it 2^64 fresh counters):
 * - Failures are counted in a fixed window of `windowMs` that starts at the first failure; a
 *   window past its end starts again from zero.
 * - The first half of `limit` failures are answered at once; each further one is answered after
 *   `delayMs`, doubling per failure, at most MAX_DELAY_MS. The delay is the caller's to apply
 *   with a timer: nothing here waits.
 * - The `limit`-th failure bans the source for `banMs`: until then every attempt from it is
 *   refused before its credentials are looked at, right or wrong.
 * - A success changes nothing: it neither resets the count of its own source (an attacker
 *   holding one valid credential could otherwise interleave it to reset the count) nor anyone
 *   else's.
 *
 * Invariants:
 * - Bounded memory: at most MAX_TRACKED sources, least recently failed evicted first; an entry
 *   whose window and ban have both ended is dropped when next seen, and during sweeps of the
 *   oldest entries on each failure.
 * - A decision depends only on the source address, never on the client id, token id or user
 *   name tried, so a refusal tells nothing about which of them exist.
 * - `limit` 0 turns the limiter off: `check` always allows and `recordFailure` keeps nothing
 *   but the count.
 */
import { isIPv6 } from 'node:net';
import type { ErrorCode } from '../errors.ts';

/**
 * MQTT refusals that are a failed authentication and count against the source: wrong
 * credentials (CONNECT admission or an enhanced-authentication exchange), not protocol errors.
 */
export function isAuthFailure(code: ErrorCode): boolean {
  return code === 'BAD_CREDENTIALS' || code === 'NOT_AUTHORIZED';
}

/** Sources tracked at most (about 100 bytes each). */
export const MAX_TRACKED = 100_000;
/** Longest delay before answering a failed authentication. */
export const MAX_DELAY_MS = 5_000;

/** Where an authentication was tried: an MQTT CONNECT or an admin API request. */
export type AuthProtocol = 'mqtt' | 'api';

export interface LimiterCounts {
  /** Failed authentications recorded (counted while the limiter is off too). */
  failures: number;
  /** Failures answered after a delay. */
  delayed: number;
  /** Attempts refused during a ban, before their credentials were looked at. */
  refused: number;
}

export interface FailureLimits {
  /** Failures per window that ban the source; 0: off. */
  limit: number;
  windowMs: number;
  banMs: number;
  /** First delay once half the limit is used; 0: no delays. */
  delayMs: number;
}

/** What to do with an attempt before its credentials are checked. */
export type Admittance = { banned: false } | { banned: true; retryAfterMs: number };

/** What a failure leads to: wait `delayMs` before answering; `banned` when it started a ban. */
export interface FailureVerdict {
  delayMs: number;
  banned: boolean;
}

interface Source {
  failures: number;
  windowEnd: number;
  /** 0 when not banned. */
  bannedUntil: number;
}

const ALLOWED: Admittance = { banned: false };
const NO_DELAY: FailureVerdict = { delayMs: 0, banned: false };

export class FailureLimiter {
  readonly #limits: FailureLimits;
  readonly #now: () => number;
  readonly #maxTracked: number;
  /** Insertion order is recency of the last failure: the first entry is evicted first. */
  readonly #sources = new Map<string, Source>();
  /** Counters by protocol, read by the metrics at scrape time. */
  readonly counts: Record<AuthProtocol, LimiterCounts> = {
    mqtt: { failures: 0, delayed: 0, refused: 0 },
    api: { failures: 0, delayed: 0, refused: 0 },
  };
  /** Bans started. */
  bans = 0;

  constructor(limits: FailureLimits, now: () => number = Date.now, maxTracked = MAX_TRACKED) {
    this.#limits = limits;
    this.#now = now;
    this.#maxTracked = maxTracked;
  }

  get enabled(): boolean {
    return this.#limits.limit > 0;
  }

  /** Sources tracked now. */
  get tracked(): number {
    return this.#sources.size;
  }

  /** Sources banned now (a walk: for scrapes, not for the connection path). */
  bannedCount(): number {
    const now = this.#now();
    let n = 0;
    for (const source of this.#sources.values()) if (source.bannedUntil > now) n++;
    return n;
  }

  /** Whether an attempt from `address` may be authenticated at all; a refusal is counted. */
  check(address: string, protocol: AuthProtocol): Admittance {
    if (!this.enabled) return ALLOWED;
    const key = sourceKey(address);
    const source = this.#sources.get(key);
    if (source === undefined) return ALLOWED;
    const now = this.#now();
    if (source.bannedUntil > now) {
      this.counts[protocol].refused++;
      return { banned: true, retryAfterMs: source.bannedUntil - now };
    }
    if (source.windowEnd <= now) this.#sources.delete(key);
    return ALLOWED;
  }

  /** Counts a failed authentication from `address`. */
  recordFailure(address: string, protocol: AuthProtocol): FailureVerdict {
    this.counts[protocol].failures++;
    if (!this.enabled) return NO_DELAY;
    const { limit, windowMs, banMs, delayMs } = this.#limits;
    const key = sourceKey(address);
    const now = this.#now();
    let source = this.#sources.get(key);
    if (source !== undefined) this.#sources.delete(key);
    if (source === undefined || (source.windowEnd <= now && source.bannedUntil <= now))
      source = { failures: 0, windowEnd: now + windowMs, bannedUntil: 0 };
    else if (source.windowEnd <= now) {
      source.failures = 0;
      source.windowEnd = now + windowMs;
    }
    this.#sources.set(key, source);
    this.#sweep(now);
    source.failures++;
    if (source.failures >= limit) {
      source.failures = 0;
      source.bannedUntil = now + banMs;
      source.windowEnd = source.bannedUntil;
      this.bans++;
      return { delayMs: 0, banned: true };
    }
    const free = Math.ceil(limit / 2);
    if (delayMs === 0 || source.failures <= free) return NO_DELAY;
    this.counts[protocol].delayed++;
    const doublings = Math.min(source.failures - free - 1, 30);
    return { delayMs: Math.min(delayMs * 2 ** doublings, MAX_DELAY_MS), banned: false };
  }

  /** Drops ended entries from the old end, and the oldest past the cap. */
  #sweep(now: number): void {
    for (const [key, source] of this.#sources) {
      const ended = source.windowEnd <= now && source.bannedUntil <= now;
      if (!ended && this.#sources.size <= this.#maxTracked) return;
      this.#sources.delete(key);
    }
  }
}

/** The key an address is counted under: IPv4 (or IPv4-mapped) as it is, IPv6 by its /64. */
export function sourceKey(address: string): string {
  if (address.startsWith('::ffff:') && address.includes('.')) return address.slice(7);
  if (!isIPv6(address)) return address;
  return `${expandIPv6(address).slice(0, 4).join(':')}::/64`;
}

/** The eight 16-bit groups of an IPv6 address, lower-case hex without leading zeros. */
function expandIPv6(address: string): string[] {
  const zone = address.indexOf('%');
  const bare = zone === -1 ? address : address.slice(0, zone);
  const [head = '', tail] = bare.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const missing = 8 - left.length - right.length;
  const groups = [...left, ...Array<string>(Math.max(missing, 0)).fill('0'), ...right];
  return groups.map((g) => (g.includes('.') ? g : Number.parseInt(g, 16).toString(16)));
}
