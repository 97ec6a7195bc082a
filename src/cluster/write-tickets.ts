/**
 * Writes that acknowledgements wait for, settled out of order, waited for in order (a
 * `CommitGate`, store/journaled-message-store.ts): retained-sync.ts takes a ticket per retained
 * write and settles it when the stream holds it.
 *
 * Invariants:
 * - `whenConfirmed(fn)` runs `fn` once every ticket taken before the call is settled; with an
 *   error when the last ticket taken before it failed (an acknowledgement asks right after its
 *   own write: that ticket is its message's).
 * - A ticket outstanding for `timeoutMs` is failed (its write may still land later: the
 *   acknowledgement only stops promising it).
 * - Callbacks run in call order; one that throws does not stop the others.
 */
import type { CommitGate } from '../store/index.ts';

export class WriteTickets implements CommitGate {
  readonly #timeoutMs: number;
  readonly #onError: (err: unknown) => void;
  #made = 0;
  /** Outstanding tickets and when they were taken (insertion order is ticket order). */
  readonly #outstanding = new Map<number, number>();
  /** Failed tickets a waiter may still ask about. */
  readonly #failed = new Map<number, Error>();
  #waiters: { ticket: number; fn: (error?: Error) => void }[] = [];

  constructor(timeoutMs: number, onError: (err: unknown) => void) {
    this.#timeoutMs = timeoutMs;
    this.#onError = onError;
  }

  get pending(): boolean {
    return this.#outstanding.size > 0;
  }

  /** A new write: its ticket. */
  take(now = Date.now()): number {
    const ticket = ++this.#made;
    this.#outstanding.set(ticket, now);
    return ticket;
  }

  /** These writes are held (no error) or will not be (`error`). */
  settle(tickets: Iterable<number>, error?: Error): void {
    for (const ticket of tickets)
      if (this.#outstanding.delete(ticket) && error !== undefined) this.#failed.set(ticket, error);
    this.#run();
  }

  /** Fails the tickets outstanding for longer than the timeout. */
  expire(now: number, error: Error): void {
    const late: number[] = [];
    for (const [ticket, at] of this.#outstanding) if (now - at > this.#timeoutMs) late.push(ticket);
    if (late.length > 0)
      this.settle(
        late.sort((a, b) => a - b),
        error,
      );
  }

  whenConfirmed(fn: (error?: Error) => void): void {
    this.#waiters.push({ ticket: this.#made, fn });
    this.#run();
  }

  #run(): void {
    const first = this.#outstanding.keys().next();
    const floor = first.done ? Number.POSITIVE_INFINITY : first.value;
    let i = 0;
    while (i < this.#waiters.length && this.#waiters[i]!.ticket < floor) i++;
    if (i === 0) return;
    const ready = this.#waiters.splice(0, i);
    for (const w of ready) {
      try {
        w.fn(this.#failed.get(w.ticket));
      } catch (err) {
        this.#onError(err);
      }
    }
    // No waiter asks about a ticket below the next one's: those failures are told.
    const next = this.#waiters[0]?.ticket ?? this.#made + 1;
    for (const ticket of this.#failed.keys()) if (ticket < next) this.#failed.delete(ticket);
  }
}
