/**
 * Paces the connections one listener takes on (`--max-connection-rate`): a token bucket of
 * `ratePerSecond`, holding a tenth of a second's worth (at least one). An arrival with a token
 * is handed over at once; one without waits in a FIFO queue, unread (its bytes stay in the
 * kernel, and TCP flow control pushes back on the client), and a timer hands the queue over as
 * tokens refill. A storm is thus taken on at the rate, never refused, and the work of a new
 * connection (a TLS handshake, a parser, a CONNECT timer, authentication) is spread over time
 * instead of taking the event loop from the clients already connected.
 *
 * Bounded: an arrival that closed while waiting is skipped, and one that waited longer than
 * `maxWaitMs` (the connect timeout: it could no longer CONNECT in time) is dropped. So the queue
 * holds at most the arrivals of `maxWaitMs`, each a socket and nothing more.
 *
 * Off (rate 0): `admit` hands over at once, the same call as without a pacer.
 */

export interface PacedArrival {
  readonly destroyed: boolean;
  destroy(): void;
}

/** What a pacer has done, for the metrics. */
export interface PacingFigures {
  /** Arrivals that had to wait for their turn. */
  readonly paced: number;
  /** Arrivals closed for waiting longer than `maxWaitMs`. */
  readonly expired: number;
  /** Arrivals waiting now. */
  readonly waiting: number;
}

export class AcceptPacer<T extends PacedArrival> implements PacingFigures {
  readonly ratePerSecond: number;
  readonly maxWaitMs: number;
  paced = 0;
  expired = 0;
  readonly #capacity: number;
  #tokens: number;
  #refilledAt = performance.now();
  #queue: { item: T; at: number; handOver: (item: T) => void }[] = [];
  #head = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(ratePerSecond: number, maxWaitMs: number) {
    this.ratePerSecond = ratePerSecond;
    this.maxWaitMs = maxWaitMs;
    this.#capacity = Math.max(1, Math.floor(ratePerSecond / 10));
    this.#tokens = this.#capacity;
  }

  get waiting(): number {
    return this.#queue.length - this.#head;
  }

  /** Hands `item` to `handOver` now, or when the rate allows. */
  admit(item: T, handOver: (item: T) => void): void {
    if (this.ratePerSecond === 0) return handOver(item);
    this.#refill();
    if (this.waiting === 0 && this.#tokens >= 1) {
      this.#tokens--;
      return handOver(item);
    }
    this.paced++;
    this.#queue.push({ item, at: performance.now(), handOver });
    this.#schedule();
  }

  /** Drops every waiting arrival (the listener closes). */
  destroyAll(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    for (let i = this.#head; i < this.#queue.length; i++) this.#queue[i]!.item.destroy();
    this.#queue = [];
    this.#head = 0;
  }

  #refill(): void {
    const now = performance.now();
    this.#tokens = Math.min(
      this.#capacity,
      this.#tokens + ((now - this.#refilledAt) * this.ratePerSecond) / 1000,
    );
    this.#refilledAt = now;
  }

  #schedule(): void {
    if (this.#timer !== undefined) return;
    const wait = Math.max(1, Math.ceil((1 - this.#tokens) * (1000 / this.ratePerSecond)));
    this.#timer = setTimeout(this.#drain, wait);
  }

  #drain = (): void => {
    this.#timer = undefined;
    this.#refill();
    const now = performance.now();
    while (this.waiting > 0 && this.#tokens >= 1) {
      const entry = this.#queue[this.#head]!;
      this.#queue[this.#head++] = undefined as never;
      if (entry.item.destroyed) continue;
      if (now - entry.at > this.maxWaitMs) {
        this.expired++;
        entry.item.destroy();
        continue;
      }
      this.#tokens--;
      entry.handOver(entry.item);
    }
    if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    if (this.waiting > 0) this.#schedule();
  };
}
