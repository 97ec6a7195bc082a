/**
 * Metrics of one broker's on-publish hook: counters since start, the latency of recent calls
 * (a ring of the last 1024, for p50/p99/max) and the last errors (10, newest last). Every drop
 * is counted under its cause; nothing leaves the hook uncounted:
 * messages = forwarded + dropped + invalid + failedDropped + failedForwarded + pending.
 * Derived messages are counted apart: `published` (sent by `ctx.publish`) and `publishRefused`
 * (refused by the broker's derived-publish budget, whatever became of their call).
 * `durations` holds every settled call's duration since start, for the metrics endpoint.
 */
import { DurationHistogram } from '../observability/index.ts';

const LATENCY_SAMPLES = 1024;
const ERRORS_KEPT = 10;

export interface HookError {
  at: string;
  kind: 'webhook' | 'function';
  /** Shown to the tenant: for a webhook only its failure class, never the target's status or errno. */
  message: string;
}

export interface HookStatsView {
  calls: number;
  messages: number;
  forwarded: number;
  /** Left out of the hook's answer: dropped on purpose. */
  dropped: number;
  /** Returned with an unknown or repeated mid, a changed topic or an unreadable payload: dropped. */
  invalid: number;
  /** Calls that failed (error, timeout, bad answer, limit). */
  failures: number;
  timeouts: number;
  retries: number;
  /** Messages dropped because their call failed under `fail-closed`. */
  failedDropped: number;
  /** Messages forwarded unchanged because their call failed under `fail-open`. */
  failedForwarded: number;
  /** Derived messages published by functions (`ctx.publish`). */
  published: number;
  /** `ctx.publish` calls refused by the broker's derived-publish budget (publish-budget.ts). */
  publishRefused: number;
  /** Messages accepted and not yet decided. */
  pending: number;
  /** Publishers whose reading is paused because too many messages are pending. */
  pausedPublishers: number;
  latencyMs: { p50: number; p99: number; max: number; samples: number };
  lastErrors: HookError[];
}

export class HookStats {
  calls = 0;
  messages = 0;
  forwarded = 0;
  dropped = 0;
  invalid = 0;
  failures = 0;
  timeouts = 0;
  retries = 0;
  failedDropped = 0;
  failedForwarded = 0;
  published = 0;
  publishRefused = 0;
  /** Seconds each settled call took, failed ones included; its count is the settled calls. */
  readonly durations = new DurationHistogram();
  readonly #latencies = new Float64Array(LATENCY_SAMPLES);
  #samples = 0;
  readonly #errors: HookError[] = [];

  recordLatency(ms: number): void {
    this.durations.observe(ms / 1000);
    this.#latencies[this.#samples % LATENCY_SAMPLES] = ms;
    this.#samples++;
  }

  recordError(kind: HookError['kind'], message: string): void {
    this.#errors.push({ at: new Date().toISOString(), kind, message: message.slice(0, 500) });
    if (this.#errors.length > ERRORS_KEPT) this.#errors.shift();
  }

  view(pending: number, pausedPublishers: number): HookStatsView {
    const n = Math.min(this.#samples, LATENCY_SAMPLES);
    const sorted = Array.from(this.#latencies.subarray(0, n)).sort((a, b) => a - b);
    const at = (q: number): number => (n === 0 ? 0 : round(sorted[Math.min(n - 1, Math.floor(q * n))]!));
    return {
      calls: this.calls,
      messages: this.messages,
      forwarded: this.forwarded,
      dropped: this.dropped,
      invalid: this.invalid,
      failures: this.failures,
      timeouts: this.timeouts,
      retries: this.retries,
      failedDropped: this.failedDropped,
      failedForwarded: this.failedForwarded,
      published: this.published,
      publishRefused: this.publishRefused,
      pending,
      pausedPublishers,
      latencyMs: {
        p50: at(0.5),
        p99: at(0.99),
        max: n === 0 ? 0 : round(sorted[n - 1]!),
        samples: this.#samples,
      },
      lastErrors: [...this.#errors],
    };
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
