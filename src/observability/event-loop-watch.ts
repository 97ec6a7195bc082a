/**
 * Event-loop stalls, for the liveness probe (`GET /livez`).
 *
 * A timer armed every `tickMs` measures how late it fires: that lateness is time the loop spent
 * on something else (a long synchronous computation, a blocking call, a GC pause). `stallMs()`
 * is the worst lateness seen in the last `windowMs`, or the stall still under way when the timer
 * is overdue at the moment of asking: a probe that waited out a stall is often read before the
 * timer that would have measured it has run.
 *
 * Costs one unref'd timer callback per tick and nothing per message.
 */
export class EventLoopWatch {
  readonly tickMs: number;
  readonly windowMs: number;
  #timer: NodeJS.Timeout | undefined;
  /** performance.now() of the last tick (or of start). */
  #lastTick = 0;
  /** The worst lateness recorded, and when it was recorded. */
  #worstMs = 0;
  #worstAt = 0;

  constructor({ tickMs = 100, windowMs = 10_000 }: { tickMs?: number; windowMs?: number } = {}) {
    this.tickMs = tickMs;
    this.windowMs = windowMs;
  }

  start(): void {
    if (this.#timer !== undefined) return;
    this.#lastTick = performance.now();
    this.#timer = setInterval(this.#tick, this.tickMs).unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Milliseconds of the worst stall in the last window, or of the one in progress. */
  stallMs(): number {
    const now = performance.now();
    const current = this.#timer === undefined ? 0 : Math.max(0, now - this.#lastTick - this.tickMs);
    const recent = now - this.#worstAt <= this.windowMs ? this.#worstMs : 0;
    return Math.round(Math.max(current, recent));
  }

  #tick = (): void => {
    const now = performance.now();
    const late = now - this.#lastTick - this.tickMs;
    this.#lastTick = now;
    // A larger stall, or any stall once the recorded one has left the window, replaces it.
    if (late > this.#worstMs || now - this.#worstAt > this.windowMs) {
      this.#worstMs = Math.max(0, late);
      this.#worstAt = now;
    }
  };
}
