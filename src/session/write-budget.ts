/**
 * The process's budget for unsent bytes (`--max-total-write-buffer`): the sum of every
 * connection's backlog, kept as a plain number that connections adjust when they write, flush
 * and drain, never by a scan.
 *
 * A write is charged at once, so a fan-out sees the budget spent within its own event-loop
 * turn; the flush then reconciles the charge with what the socket really holds. A connection
 * that still owed a 'drain' at its last flush is shed as soon as the total passes the budget,
 * so one turn overshoots it by at most a packet per such connection; one that did not (its
 * last turn all went into the kernel) is not slow and is not shed within the turn.
 *
 * A connection counts its socket's `writableLength` only while the socket owes a 'drain'
 * (`writableNeedDrain`: a write went past the stream's high-water mark), so that every
 * counted figure is taken back by a 'drain' or the close: a backlog below the high-water mark
 * is not counted, and a counted one may be stale-high until then (the budget errs on the
 * safe side).
 *
 * Over budget, the connections owing a 'drain' whose backlog is at or above their fair share
 * (the budget divided by the connections with a counted backlog) get no QoS 0 (counted as
 * `write_budget`) and queue QoS 1/2 until they drain. Those below their share may still grow to
 * it, so the total stays within about the budget (plus one turn's writes) however many stall.
 * The average would not bound it: connections that all stall grow in lockstep, half of them
 * below the average at any moment, until each meets its own `--max-write-buffer` (100 stalled
 * subscribers held 105 MB against an 8 MiB budget). Two numbers give the share, so finding it
 * costs nothing per message.
 *
 * While the process is overloaded (`--max-memory`, observability/overload-watch.ts), the budget
 * is `shedding`: connections still owing a 'drain' get no QoS 0 either (counted as
 * `overload`), whatever the total.
 */
export class WriteBudget {
  /** Bytes of unsent output allowed across all connections. */
  readonly max: number;
  /** Sum of the counted backlogs. */
  #total = 0;
  /** Connections with a counted backlog. */
  #backlogged = 0;
  /** `total > max`, kept as a flag so a connection under budget reads one boolean. */
  over = false;

  readonly #overload: { readonly overloaded: boolean };

  /** `overload`: the process's overload verdict (the server's OverloadWatch); never, by default. */
  constructor(max: number, overload: { readonly overloaded: boolean } = { overloaded: false }) {
    this.max = max;
    this.#overload = overload;
  }

  /** The process is overloaded: QoS 0 to every connection that owes a 'drain' is shed. */
  get shedding(): boolean {
    return this.#overload.overloaded;
  }

  get total(): number {
    return this.#total;
  }

  /** Connections with a counted backlog. */
  get backlogged(): number {
    return this.#backlogged;
  }

  /** Each backlogged connection's share of the budget: over budget, those at or above it are shed. */
  get fairShare(): number {
    return this.#backlogged === 0 ? this.max : this.max / this.#backlogged;
  }

  /** Whether a connection owing a 'drain' with `backlog` counted bytes is shed by the budget now. */
  sheds(backlog: number): boolean {
    return this.over && backlog >= this.fairShare;
  }

  /** A connection's counted backlog went from `before` to `after` bytes. */
  change(before: number, after: number): void {
    this.#total += after - before;
    if (before === 0) this.#backlogged++;
    if (after === 0) this.#backlogged--;
    this.over = this.#total > this.max;
  }
}
