/**
 * The derived-publish budget of one broker: how many messages, and how many bytes (topic and
 * payload, UTF-8), its sandboxed function may send with `ctx.publish` per second. Without it
 * one inbound QoS 1 publish could make a call publish 1000 retained messages, and a publisher
 * sending many such messages multiplies the server's shared CPU by a thousand.
 *
 * Algorithm: two token buckets (messages, bytes), each filled at its rate up to `burstMs` of
 * that rate, full at creation. One budget per broker, shared by every call of its function and
 * by every version deployed after it (a redeploy does not refill it).
 *
 * Charging follows the buffering rule of function/effects.ts (publishes of a call take effect
 * only when the call succeeds):
 * - `admit` is asked at each `ctx.publish`, with what the call has admitted so far: it throws
 *   a RangeError inside the function when the call's messages or bytes would exceed what the
 *   buckets hold now. Nothing is taken yet.
 * - `charge` takes the call's admitted messages and bytes when the call succeeds; a failed
 *   call is never charged. Calls of one broker's function run synchronously one after the
 *   other (function/function-hook.ts), so nothing is taken between a call's `admit` and its `charge`
 *   and a bucket never goes below zero.
 * - Every refusal is reported to `onRefused` (counted in the hook's stats); `first` is true for
 *   at most one refusal a minute (the one logged), so a function held at its budget for hours
 *   logs a line a minute, not one per call.
 * A rate of 0 disables derived publishes; a single message larger than the byte burst can
 * never fit and is refused with its own message.
 */

/** How often a refusal is flagged for the log. */
const REFUSAL_LOG_INTERVAL_MS = 60_000;

export interface PublishBudgetLimits {
  /** Messages per second (`--function-publish-rate`); 0 disables ctx.publish. */
  messagesPerSecond: number;
  /** Topic and payload bytes per second (`--function-publish-bytes-rate`); 0 disables ctx.publish. */
  bytesPerSecond: number;
  /** How much of each rate may be spent at once after an idle time (`--function-publish-burst-ms`). */
  burstMs: number;
}

export class PublishBudget {
  readonly limits: Readonly<PublishBudgetLimits>;
  readonly #now: () => number;
  readonly #onRefused: (message: string, first: boolean) => void;
  readonly #messageCapacity: number;
  readonly #byteCapacity: number;
  #messages: number;
  #bytes: number;
  #at: number;
  /** When a refusal was last reported as `first`. */
  #flaggedAt = Number.NEGATIVE_INFINITY;

  /** `now` is a monotonic clock in milliseconds (performance.now; tests inject their own). */
  constructor(
    limits: PublishBudgetLimits,
    onRefused: (message: string, first: boolean) => void,
    now: () => number = () => performance.now(),
  ) {
    const { messagesPerSecond, bytesPerSecond, burstMs } = limits;
    for (const [name, value] of Object.entries(limits)) {
      if (!Number.isSafeInteger(value) || value < 0)
        throw new RangeError(`${name} must be a non-negative integer`);
    }
    if (burstMs === 0) throw new RangeError('burstMs must be positive');
    this.limits = Object.freeze({ ...limits });
    this.#now = now;
    this.#onRefused = onRefused;
    // Rounded up, so any positive rate admits at least one message (and one byte) per burst.
    this.#messageCapacity = Math.ceil((messagesPerSecond * burstMs) / 1000);
    this.#byteCapacity = Math.ceil((bytesPerSecond * burstMs) / 1000);
    this.#messages = this.#messageCapacity;
    this.#bytes = this.#byteCapacity;
    this.#at = now();
  }

  /**
   * Lets one more publish of `bytes` into a call that has admitted `messages` messages of
   * `admittedBytes` so far, or throws a RangeError naming the budget and its setting.
   */
  admit(messages: number, admittedBytes: number, bytes: number): void {
    const refusal = this.#refusal(messages + 1, admittedBytes + bytes, bytes);
    if (refusal === undefined) return;
    const now = this.#now();
    const first = now - this.#flaggedAt >= REFUSAL_LOG_INTERVAL_MS;
    if (first) this.#flaggedAt = now;
    this.refused(refusal, first);
    throw new RangeError(refusal);
  }

  /**
   * Reports a refusal to the owner (`onRefused`), as `admit` does; the worker pool calls it for
   * refusals decided by the copy of this budget in a function's worker thread.
   */
  refused(message: string, first: boolean): void {
    try {
      this.#onRefused(message, first);
    } catch {
      // Counting or logging a refusal must not change what the function sees.
    }
  }

  /**
   * Sets what the buckets hold (clamped to their capacity): a copy of a budget, made in a
   * function's worker thread, starts from what the original holds (`available()`), so moving a
   * function to a new worker does not refill its broker's budget.
   */
  seed(level: { messages: number; bytes: number }): void {
    this.#refill();
    this.#messages = Math.min(this.#messageCapacity, level.messages);
    this.#bytes = Math.min(this.#byteCapacity, level.bytes);
  }

  /** Takes what a successful call published. */
  charge(messages: number, bytes: number): void {
    if (messages === 0) return;
    this.#refill();
    this.#messages -= messages;
    this.#bytes -= bytes;
  }

  /** What the buckets hold now (for the hook's view and tests). */
  available(): { messages: number; bytes: number } {
    this.#refill();
    return { messages: Math.floor(this.#messages), bytes: Math.floor(this.#bytes) };
  }

  #refusal(messages: number, bytes: number, single: number): string | undefined {
    const { messagesPerSecond, bytesPerSecond, burstMs } = this.limits;
    if (messagesPerSecond === 0 || bytesPerSecond === 0) {
      const setting = messagesPerSecond === 0 ? '--function-publish-rate' : '--function-publish-bytes-rate';
      return `ctx.publish: derived publishes are disabled on this server (${setting} 0)`;
    }
    if (single > this.#byteCapacity) {
      return (
        `ctx.publish: a message of ${single} bytes (topic and payload) is larger than the derived-publish ` +
        `burst of ${this.#byteCapacity} bytes (--function-publish-bytes-rate ${bytesPerSecond} for --function-publish-burst-ms ${burstMs})`
      );
    }
    this.#refill();
    if (messages > this.#messages) {
      return (
        `ctx.publish: over the derived-publish budget of ${messagesPerSecond} messages/s per broker ` +
        `(--function-publish-rate, burst --function-publish-burst-ms ${burstMs}); ${this.#wait(messages - this.#messages, messagesPerSecond)}`
      );
    }
    if (bytes > this.#bytes) {
      return (
        `ctx.publish: over the derived-publish budget of ${bytesPerSecond} bytes/s per broker ` +
        `(--function-publish-bytes-rate, burst --function-publish-burst-ms ${burstMs}); ${this.#wait(bytes - this.#bytes, bytesPerSecond)}`
      );
    }
    return undefined;
  }

  /** How long until `missing` tokens have flowed in, said for a person. */
  #wait(missing: number, rate: number): string {
    return `it refills in ${Math.max(1, Math.ceil((missing * 1000) / rate))} ms`;
  }

  #refill(): void {
    const now = this.#now();
    const elapsed = now - this.#at;
    if (elapsed <= 0) return;
    this.#at = now;
    const { messagesPerSecond, bytesPerSecond } = this.limits;
    this.#messages = Math.min(this.#messageCapacity, this.#messages + (elapsed * messagesPerSecond) / 1000);
    this.#bytes = Math.min(this.#byteCapacity, this.#bytes + (elapsed * bytesPerSecond) / 1000);
  }
}
