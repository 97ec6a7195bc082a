/**
 * The read budget: how much input work one connection may do in one event-loop turn before it
 * lets the others have theirs (connection-io.ts). Without it one flooding client's turn lasted
 * as long as libuv had bytes for it (up to 32 reads of 64 KiB, ~870 PUBLISH each, every one
 * fanned out at once): 40-67 ms for a flood to one subscriber, 0.5-1 s to 1,000 `#`
 * subscribers, while every other socket of the process waited (docs/performance.md, isolation).
 *
 * Work is counted in packets read plus the deliveries their routing made (the broker bumps
 * `inputWork.deliveries` once per routed message, by its match count), so a PUBLISH to 1,000
 * subscribers weighs what it costs. A fan-out split across turns (src/broker/fan-out.ts) is
 * queued, not made, while the packet is read: its deliveries are bounded by the fan-out's own
 * slice per turn and are not counted here. Past `READ_BUDGET` the parser yields between packets
 * (protocol/parser.ts `YIELD`), reading is held (HOLD_TURN) and the rest goes on in a later turn,
 * after every other readable socket has been served.
 *
 * Turns are numbered lazily: the first read of a turn schedules one setImmediate that ends it,
 * so an idle process schedules nothing, and a connection's count restarts when it first reads in
 * a new turn.
 */

/**
 * Work units (packets + deliveries) per connection per turn: ~1 µs each on the fan-in path, so
 * about 0.1 ms of a turn. Chosen by bench/neighbours.ts noisy (docs/performance.md, isolation):
 * a quiet neighbour's p99 under a 4-publisher flood was 5.4x its idle value at 1,000, 2.3-3.3x
 * at 250 and 1.9x at 100, with the flood's own rate unchanged (0.96-1.04M msgs/s) and the
 * closed-loop fan-in within its run-to-run noise.
 */
export const READ_BUDGET = 100;

/** Counters the read budget reads around each packet; plain fields, bumped on the hot path. */
export const inputWork = {
  /** Deliveries routing has made since start (one add per routed message). */
  deliveries: 0,
  /** The current event-loop turn's number (`currentTurn`). */
  turn: 0,
};

let turnEnding = false;

function endTurn(): void {
  turnEnding = false;
  inputWork.turn++;
}

/** The current turn's number; the turn ends (the number moves on) after this poll phase. */
export function currentTurn(): number {
  if (!turnEnding) {
    turnEnding = true;
    setImmediate(endTurn);
  }
  return inputWork.turn;
}
