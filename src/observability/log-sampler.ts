/**
 * A rate limit on a family of log lines (client connects, disconnects, takeovers, refusals):
 * at most `perSecond` lines in each one-second window, the rest dropped and counted. The first
 * line let through after some were dropped carries how many (`suppressed`), so the log still
 * says what happened, and `suppressed` totals them for the metrics.
 *
 * A fixed window: two reads of a clock and a compare per line. A takeover loop that made 11,000
 * lines a second makes `perSecond` of them, each counting the ones it stands for.
 */
export class LogSampler {
  /** Lines per second let through; 0: every line. */
  readonly perSecond: number;
  /** Lines dropped since the start. */
  suppressed = 0;
  #windowStart = 0;
  #inWindow = 0;
  /** Lines dropped since the last one let through. */
  #pending = 0;

  constructor(perSecond: number) {
    this.perSecond = perSecond;
  }

  /**
   * Whether to log one more line now: false (counted as suppressed) when this window is full,
   * else the number of lines dropped since the last one logged (0 when none), for the line to carry.
   */
  take(now: number = Date.now()): number | false {
    if (this.perSecond === 0) return 0;
    if (now - this.#windowStart >= 1000) {
      this.#windowStart = now;
      this.#inWindow = 0;
    }
    if (this.#inWindow >= this.perSecond) {
      this.suppressed++;
      this.#pending++;
      return false;
    }
    this.#inWindow++;
    const dropped = this.#pending;
    this.#pending = 0;
    return dropped;
  }
}

/** `fields` with `suppressed` added when lines were dropped before this one. */
export function withSuppressed<T extends object>(fields: T, dropped: number): T {
  return dropped === 0 ? fields : { ...fields, suppressed: dropped };
}
