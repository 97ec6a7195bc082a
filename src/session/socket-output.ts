/**
 * The socket side of a connection's output: what one event-loop turn writes is gathered and
 * flushed once, charged to the server's write budget, and judged congested or not.
 *
 * Invariants:
 * - Writes within one event-loop turn are held and flushed together once every socket
 *   readable in that turn has been handled (setImmediate, after the poll phase): one write per
 *   receiver for messages that arrived on several sockets at once. Packets under
 *   `GATHER_BELOW` are gathered (references, no copy) and copied into one buffer when the turn
 *   flushes, when `GATHER_CHUNK` bytes are gathered, or before a larger packet, which is
 *   written as it is: the socket sees one buffer per turn, not one write (a request and an
 *   iovec, kept the whole turn) per copy, and the order of packets holds. Nothing is kept
 *   between turns (an idle connection holds no buffer). The socket is corked only in a turn
 *   that gives it a buffer before the flush (a large packet, or `GATHER_CHUNK` reached), so
 *   that the turn's buffers still leave in one writev; a turn of small packets is one write
 *   without corking, which spares the stream its per-write records (docs/performance.md).
 * - `congested` reports unsent bytes above the configured bound (`--max-write-buffer`), or,
 *   while the server's unsent bytes together are over `--max-total-write-buffer`, at or above
 *   its fair share of the budget (write-budget.ts); the session then queues QoS 1/2 and drops QoS 0
 *   (counted as `congested` or `write_budget`), and 'drain' resumes it.
 * - Each write charges its bytes to the server's WriteBudget at once, so `congested` sees this
 *   turn's output while the turn fans out (one turn never overshoots the budget by more than a
 *   packet per connection); each flush reconciles the charge with the socket's real backlog,
 *   and a 'drain' or the close takes it back. While the process is overloaded (overload-watch.ts,
 *   via the budget), a connection that still owed a 'drain' at its last flush is congested too:
 *   QoS 0 to it is shed first (counted as `overload`). A backlog over `--max-write-buffer` that does not drain within
 *   `--max-congested-ms` closes the connection (QUOTA_EXCEEDED, v5 DISCONNECT 0x97): the
 *   client exceeded a per-client bound, which is what 0x97 says; 0x89 Server busy would
 *   blame the server, and is what overload protection sends.
 */
import type { Duplex } from 'node:stream';
import type { Config } from '../config.ts';
import type { ErrorCode } from '../errors.ts';
import { scheduleFlush } from './flush-scheduler.ts';
import type { ConnectionState } from './handler-context.ts';
import type { BrokerStats } from './host.ts';
import type { WriteBudget } from './write-budget.ts';

/**
 * Packets smaller than this are gathered and copied into one buffer per turn; larger ones are
 * written as they are. A fan-out shares one encoded buffer among its receivers: copying 1 KB
 * to each cost more (memory and time) than the write it saves, copying 64 B did not
 * (docs/performance.md, isolation).
 */
const GATHER_BELOW = 1024;
/** Gathered bytes past which they go to the socket before the flush: bounds one copy. */
const GATHER_CHUNK = 64 * 1024;

export abstract class SocketOutput {
  readonly socket: Duplex;
  readonly config: Config;
  state: ConnectionState = 'awaiting-connect';
  /**
   * The counters of the broker this connection was routed to, from CONNECT admission on
   * (`routeTo`): bytes in and out, PUBLISH packets sent, and what the lifecycle counts.
   */
  stats: BrokerStats | undefined;
  /** A flush is scheduled for this turn (something was written since the last). */
  #corked = false;
  readonly #budget: WriteBudget;
  /** This connection's backlog as the write budget counts it: the last flush's, plus bytes written since. */
  #backlog = 0;
  /** The backlog the last flush left (the socket owed a 'drain'); 0 once it drains. */
  #settled = 0;
  /** Small packets written this turn and not yet given to the socket, and their bytes. */
  #gathered: Buffer[] | undefined;
  #gatheredBytes = 0;
  /** Runs out `--max-congested-ms` once the backlog passed `--max-write-buffer`; 'drain' stops it. */
  #congestedTimer: NodeJS.Timeout | undefined;

  constructor(socket: Duplex, config: Config, budget: WriteBudget) {
    this.socket = socket;
    this.config = config;
    this.#budget = budget;
  }

  /** Closes the connection from the server side (v5: DISCONNECT with the code's reason). */
  abstract disconnect(code: ErrorCode, detail: string): void;

  get congested(): boolean {
    if (this.socket.writableLength + this.#gatheredBytes > this.config.maxWriteBufferBytes) return true;
    // Only a connection that still owed a 'drain' at its last flush is shed by the budget: one
    // that takes a burst into the kernel within a turn is not slow, however large the burst.
    if (this.#settled === 0) return false;
    const budget = this.#budget;
    return budget.sheds(this.#backlog) || budget.shedding;
  }

  /** While congested, what by: this connection's own bound, the write budget, or overload (drop counting). */
  get congestionDrop(): 'droppedCongested' | 'droppedWriteBudget' | 'droppedOverload' {
    if (this.socket.writableLength + this.#gatheredBytes > this.config.maxWriteBufferBytes)
      return 'droppedCongested';
    return this.#budget.sheds(this.#backlog) ? 'droppedWriteBudget' : 'droppedOverload';
  }

  write(bytes: Buffer): void {
    if (!this.#corked) {
      this.#corked = true;
      scheduleFlush(this);
    }
    const size = bytes.length;
    if (this.stats !== undefined) this.stats.bytesSent += size;
    this.#budget.change(this.#backlog, this.#backlog + size);
    this.#backlog += size;
    if (size >= GATHER_BELOW) {
      this.#writeGathered();
      this.#writeEarly(bytes);
      return;
    }
    if (this.#gathered === undefined) this.#gathered = [bytes];
    else this.#gathered.push(bytes);
    this.#gatheredBytes += size;
    if (this.#gatheredBytes >= GATHER_CHUNK) this.#writeGathered();
  }

  /** Gives the gathered packets to the socket before the flush (see #writeEarly). */
  #writeGathered(): void {
    const bytes = this.#takeGathered();
    if (bytes !== undefined) this.#writeEarly(bytes);
  }

  /** The gathered packets as one buffer (the one packet as it is), taken; undefined: none. */
  #takeGathered(): Buffer | undefined {
    const gathered = this.#gathered;
    if (gathered === undefined) return undefined;
    this.#gathered = undefined;
    const size = this.#gatheredBytes;
    this.#gatheredBytes = 0;
    return gathered.length === 1 ? gathered[0]! : Buffer.concat(gathered, size);
  }

  /** Before the flush the socket is corked from the first buffer on: the turn's leave in one writev. */
  #writeEarly(bytes: Buffer): void {
    if (this.socket.writableCorked === 0) this.socket.cork();
    this.socket.write(bytes);
  }

  /**
   * Sends the turn's writes. The gathered ones go without corking when nothing went before them
   * (the common case), which spares the stream its buffered-write records.
   */
  flush(): void {
    this.#corked = false;
    const bytes = this.#takeGathered();
    if (bytes !== undefined) this.socket.write(bytes);
    if (this.socket.writableCorked > 0) this.socket.uncork();
    this.#account();
  }

  /**
   * Reconciles the write budget's charge with the backlog left after a flush (counted only
   * while the socket owes a 'drain', which takes it back), and starts the congestion clock
   * when it is over this connection's bound.
   */
  #account(): void {
    const socket = this.socket;
    const backlog = socket.writableNeedDrain && !socket.destroyed ? socket.writableLength : 0;
    this.#settled = backlog;
    if (backlog !== this.#backlog) {
      this.#budget.change(this.#backlog, backlog);
      this.#backlog = backlog;
    }
    if (
      backlog > this.config.maxWriteBufferBytes &&
      this.#congestedTimer === undefined &&
      this.config.maxCongestedMs > 0 &&
      this.state !== 'closed'
    ) {
      this.#congestedTimer = setTimeout(this.#congestedTooLong, this.config.maxCongestedMs);
      this.#congestedTimer.unref();
    }
  }

  #congestedTooLong = (): void => {
    this.#congestedTimer = undefined;
    if (this.state !== 'connected' || this.socket.writableLength <= this.config.maxWriteBufferBytes) return;
    if (this.stats !== undefined) this.stats.disconnectedCongested++;
    this.disconnect(
      'QUOTA_EXCEEDED',
      `unsent bytes over --max-write-buffer for ${this.config.maxCongestedMs} ms`,
    );
  };

  /** The socket drained or closed: its backlog leaves the write budget, its congestion clock stops. */
  protected releaseBacklog(): void {
    clearTimeout(this.#congestedTimer);
    this.#congestedTimer = undefined;
    this.#settled = 0;
    if (this.#backlog === 0) return;
    this.#budget.change(this.#backlog, 0);
    this.#backlog = 0;
  }

  /** The scheduled flush; a no-op when the connection already flushed (closing). */
  flushIfCorked(): void {
    if (this.#corked) this.flush();
  }
}
