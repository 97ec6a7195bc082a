/**
 * The process's budget for unsent bytes (`--max-total-write-buffer`): the sum of every
 * connection's backlog, kept as a plain number that connections adjust when they flush and
 * when they drain, never by a scan.
 *
 * A connection counts its socket's `writableLength` only while the socket owes a 'drain'
 * (`writableNeedDrain`: a write went past the stream's high-water mark), so that every
 * counted figure is taken back by a 'drain' or the close: a backlog below the high-water mark
 * is not counted, and a counted one may be stale-high until then (the budget errs on the
 * safe side).
 *
 * Over budget, the connections whose backlog is at or above the average counted backlog are
 * the most congested: they get no QoS 0 (counted as `write_budget`) and queue QoS 1/2 until
 * they drain. Two numbers give the average, so finding them costs nothing per message.
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

  constructor(max: number) {
    this.max = max;
  }

  get total(): number {
    return this.#total;
  }

  /** The average counted backlog: connections at or above it are shed first. */
  get average(): number {
    return this.#backlogged === 0 ? 0 : this.#total / this.#backlogged;
  }

  /** A connection's counted backlog went from `before` to `after` bytes. */
  change(before: number, after: number): void {
    this.#total += after - before;
    if (before === 0) this.#backlogged++;
    if (after === 0) this.#backlogged--;
    this.over = this.#total > this.max;
  }
}
