/**
 * Large fan-outs split across event-loop turns (issue 20): one PUBLISH to 10,000 subscribers
 * must not hold the loop from every other client of the process for the whole fan-out.
 *
 * A message whose match is larger than one slice (`FAN_OUT_SLICE` deliveries) is queued here and
 * delivered from the next turn on (`setImmediate`), one slice per turn, so the poll phase (every
 * other socket) runs between slices. It is not started at once: the rest of what its publisher
 * sent in the same read queues behind it first (queuing is cheap, and the publisher's read
 * budget counts the deliveries made, not those queued), so a batch to one topic goes out
 * subscriber by subscriber from its first delivery (below).
 *
 * Invariants:
 * - Order [MQTT-4.6.0-6]: while anything is queued, every later message routed on the broker
 *   queues behind it (FIFO), however small, so each subscriber still gets every publisher's
 *   messages in the order they were routed.
 * - A queued message is matched when routed (a subscription made later does not get it; whether
 *   anything matched, v5 0x10, is known at once) and delivered later to what is still there:
 *   a subscriber that unsubscribed or whose session ended meanwhile gets nothing (checked only
 *   when the index changed since the match), a shared group's member is picked at delivery.
 * - Whoever waits for a queued message (the publish gate: its acknowledgement, after the commit
 *   of what the deliveries wrote) is told its final `Routed` bits when its last slice is
 *   delivered (`whenRouted`); publishers held meanwhile are released when the queue is empty.
 * - A deleted broker drops its queue (`clear`); nothing is delivered or answered after that.
 * - A fan-out within one slice with nothing queued costs one length read here and nothing else.
 * - Messages queued one behind the other with the same match (one topic's batch) and at the same
 *   point of it are delivered subscriber by subscriber: a receiver gets all of them in one turn
 *   (one write), in queue order; the slice still counts one per delivery.
 */
import type { MatchResult, Message } from '../router/index.ts';
import {
  ROUTED_MATCHED,
  ROUTED_PENDING,
  ROUTED_WROTE,
  type Routed,
  type RoutedSession,
  type SessionGroup,
  type Subscription,
} from '../session/index.ts';

/**
 * Deliveries made in one turn before the rest waits for the next. Measured with
 * bench/fanout-turn.ts (docs/performance.md): about 0.03–0.06 ms per delivery, so a slice
 * holds the loop for some tens of milliseconds on a busy machine.
 */
export const FAN_OUT_SLICE = 1000;

/** Delivers to one member of a shared group, picked now; true when that wrote to the store. */
export type DeliverShared = (group: SessionGroup, message: Message) => boolean;

/** Told of an internal error delivering a queued message (once per message). */
export type FanOutError = (err: unknown, message: Message) => void;

interface PendingFanOut {
  readonly message: Message;
  readonly match: MatchResult<RoutedSession, Subscription>;
  /** The index's generation at the match: while it holds, every match is still subscribed. */
  readonly generation: number;
  /** Next delivery: subscribers first, then groups (an index past the subscribers). */
  next: number;
  wrote: boolean;
  /** A delivery of it threw (reported once; the other deliveries go on). */
  failed: boolean;
  done: ((routed: Routed) => void) | undefined;
}

export class FanOut {
  /** The broker's subscription index (its change counter). */
  readonly #index: { readonly generation: number };
  readonly #deliverShared: DeliverShared;
  readonly #onError: FanOutError;
  readonly #queue: PendingFanOut[] = [];
  #drained: (() => void)[] = [];
  #scheduled = false;

  constructor(index: { readonly generation: number }, deliverShared: DeliverShared, onError: FanOutError) {
    this.#index = index;
    this.#deliverShared = deliverShared;
    this.#onError = onError;
  }

  /** Something is queued: a message routed now must queue behind it. */
  get pending(): boolean {
    return this.#queue.length > 0;
  }

  /**
   * Queues a matched message for the next turns. Returns 0 when nothing matched (nothing to
   * deliver or order), else `ROUTED_PENDING | ROUTED_MATCHED`: then `whenRouted` tells the final bits.
   */
  add(message: Message, match: MatchResult<RoutedSession, Subscription>): Routed {
    if (match.subscribers.length + match.groups.length === 0) return 0; // nothing to deliver, nothing to order
    const entry: PendingFanOut = {
      // Kept beyond this turn: copied out of the receive buffer.
      message: message.detach(),
      match,
      generation: this.#index.generation,
      next: 0,
      wrote: false,
      failed: false,
      done: undefined,
    };
    this.#queue.push(entry);
    this.#schedule();
    return ROUTED_PENDING | ROUTED_MATCHED;
  }

  /**
   * For the message `add` just queued (it returned `ROUTED_PENDING`): `done` gets its final bits
   * once its last delivery is made, and `drained` runs once nothing is queued any more.
   */
  whenRouted(done: (routed: Routed) => void, drained: () => void): void {
    this.#queue[this.#queue.length - 1]!.done = done;
    this.#drained.push(drained);
  }

  /** The broker is deleted: everything queued is dropped, undelivered and unanswered. */
  clear(): void {
    this.#queue.length = 0;
    this.#drained = [];
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(this.#turn);
  }

  /** One slice of the queue, across messages; the next turn gets the rest. */
  #turn = (): void => {
    this.#scheduled = false;
    const queue = this.#queue;
    let budget = FAN_OUT_SLICE;
    while (queue.length > 0 && budget > 0) {
      const run = this.#runAtHead(budget);
      budget = run === 1 ? this.#deliver(queue[0]!, budget) : this.#deliverRun(run, budget);
      const entry = queue[0]!;
      if (entry.next < total(entry)) break;
      // The entries of a run end together, in queue order.
      for (let i = 0; i < run; i++) {
        const done = queue.shift()!;
        done.done?.((done.wrote ? ROUTED_WROTE : 0) | ROUTED_MATCHED);
      }
    }
    if (queue.length > 0) {
      this.#schedule();
      return;
    }
    const drained = this.#drained;
    this.#drained = [];
    for (let i = 0; i < drained.length; i++) drained[i]!();
  };

  /**
   * How many entries from the head (at most `budget`) share the head's match and its position in
   * it: messages to one topic queued behind each other, e.g. a publisher's batch to 10,000
   * subscribers. They are delivered subscriber by subscriber (`#deliverRun`), so each receiver
   * gets the run's messages in one turn and one write instead of one turn and one socket write
   * per message (docs/performance.md, many stalled subscribers).
   */
  #runAtHead(budget: number): number {
    const queue = this.#queue;
    const head = queue[0]!;
    let run = 1;
    while (run < queue.length && run < budget) {
      const entry = queue[run]!;
      if (entry.match !== head.match || entry.next !== head.next) break;
      run++;
    }
    return run;
  }

  /**
   * The first `run` entries (same match, same position), subscriber by subscriber: each receiver
   * gets them in queue order, so every publisher's order holds [MQTT-4.6.0-6]. Stops before a
   * receiver the budget cannot give the whole run; returns the budget left.
   */
  #deliverRun(run: number, budget: number): number {
    const queue = this.#queue;
    const size = total(queue[0]!);
    while (budget >= run && queue[0]!.next < size) {
      for (let k = 0; k < run; k++) this.#deliverNext(queue[k]!);
      budget -= run;
    }
    return queue[0]!.next < size ? 0 : budget;
  }

  /**
   * Makes up to `budget` of the entry's deliveries; returns the budget left (0 when the entry
   * has more).
   */
  #deliver(entry: PendingFanOut, budget: number): number {
    const size = total(entry);
    while (budget > 0 && entry.next < size) {
      this.#deliverNext(entry);
      budget--;
    }
    return budget;
  }

  /**
   * The entry's next delivery. A queued message's subscriber is checked to be still subscribed
   * when the index changed since the match (an unsubscribe, a session ended [MQTT-3.10.4-2]). A
   * delivery that throws (a bug) is skipped and reported: on a later turn nothing would catch it,
   * the process would end, and the queue would never drain to release the publishers it holds.
   */
  #deliverNext(entry: PendingFanOut): void {
    const { subscribers, groups } = entry.match;
    const message = entry.message;
    const i = entry.next++;
    try {
      if (i < subscribers.length) {
        const s = subscribers[i]!;
        const subs =
          entry.generation !== this.#index.generation
            ? s.values.filter((v) => s.key.subscriptions.has(v.topicFilter))
            : s.values;
        if (subs.length > 0 && s.key.deliverMatched(message, subs)) entry.wrote = true;
      } else if (this.#deliverShared(groups[i - subscribers.length]!, message)) entry.wrote = true;
    } catch (err) {
      this.#failed(entry, err);
    }
  }

  #failed(entry: PendingFanOut, err: unknown): void {
    if (entry.failed) return;
    entry.failed = true;
    this.#onError(err, entry.message);
  }
}

const total = (entry: PendingFanOut): number => entry.match.subscribers.length + entry.match.groups.length;
