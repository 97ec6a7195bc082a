/**
 * One flush per event-loop turn for every connection written to in it. Corked connections are
 * flushed together once the event loop has handled every socket that was readable in this turn
 * (setImmediate runs right after the poll phase): messages that arrive on several sockets at
 * once leave in one write per receiver instead of one each.
 *
 * Invariant: a connection is listed at most once per turn (its owner schedules it only on the
 * write that corks it), and a listed one that has already flushed (closing) is a no-op.
 */

/** What the scheduler needs of a connection. */
export interface Flushable {
  /** Sends what was corked this turn; a no-op when nothing is. */
  flushIfCorked(): void;
}

let toFlush: Flushable[] = [];
let flushScheduled = false;

/** Flushes `connection` after this turn's poll phase. */
export function scheduleFlush(connection: Flushable): void {
  toFlush.push(connection);
  if (flushScheduled) return;
  flushScheduled = true;
  setImmediate(flushAll);
}

function flushAll(): void {
  const batch = toFlush;
  toFlush = [];
  flushScheduled = false;
  for (let i = 0; i < batch.length; i++) batch[i]!.flushIfCorked();
}
