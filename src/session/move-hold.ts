/**
 * A session that has just moved here from another cluster node (src/cluster/session-handover.ts)
 * holds its deliveries until that node sends its tail: the messages routed there for the
 * session after it left, while this node's interest in its filters had not yet reached every
 * node. Some messages come both ways (a node that already knew of both sends to both); each
 * is delivered once, and in the order of its publisher:
 *
 * - The tail goes first, in the order the old node routed it: for every publisher it holds
 *   that publisher's messages up to the moment the old node let go, and those held here start
 *   no later (the old node lets go only once this node's interest reached it, and then waits
 *   a little more for the others), so tail then held is each publisher's order.
 * - A held message is dropped when the tail carried the same one: the same identity, the node
 *   it was published on and its serial there (Message.origin and .serial, stamped when it
 *   crossed). A message that never crossed has none and came one way only.
 * - Held deliveries are kept in memory, not in the store, for the moment the tail takes (a
 *   node that dies meanwhile loses them; so does the node that held the tail). At most `limit`
 *   are held: beyond it each is dropped and counted.
 */
import type { QoS } from '../protocol/index.ts';
import type { Message } from '../router/index.ts';
import type { SessionGroup } from './host.ts';

/** A delivery held as `Session.deliver` was called. */
export interface HeldDelivery {
  readonly message: Message;
  readonly qos: QoS;
  readonly retain: boolean;
  readonly subscriptionIds: number[] | undefined;
  readonly group: SessionGroup | undefined;
}

export class MoveHold {
  /** Which move this is (the tail names it: a late tail of an earlier move is not this one's). */
  readonly move: string;
  readonly #limit: number;
  readonly #held: HeldDelivery[] = [];
  /** Deliveries dropped because `limit` were held. */
  dropped = 0;

  constructor(move: string, limit: number) {
    this.move = move;
    this.#limit = limit;
  }

  get size(): number {
    return this.#held.length;
  }

  hold(
    message: Message,
    qos: QoS,
    retain: boolean,
    subscriptionIds: number[] | undefined,
    group: SessionGroup | undefined,
  ): true {
    if (this.#held.length >= this.#limit) {
      this.dropped++;
      return true;
    }
    message.detach(); // kept beyond this turn
    this.#held.push({ message, qos, retain, subscriptionIds, group });
    return true;
  }

  /**
   * Delivers `tail` through `route` (the session's own matching), then every held delivery the
   * tail did not carry through `deliver`. Returns how many held ones were copies.
   */
  release(
    tail: readonly Message[],
    route: (message: Message) => void,
    deliver: (held: HeldDelivery) => void,
  ): number {
    const seen = new Map<number, Set<number>>();
    for (const message of tail) {
      if (message.serial !== 0) {
        let serials = seen.get(message.origin);
        if (serials === undefined) seen.set(message.origin, (serials = new Set()));
        serials.add(message.serial);
      }
      route(message);
    }
    let copies = 0;
    for (const held of this.#held) {
      const { origin, serial } = held.message;
      if (serial !== 0 && seen.get(origin)?.has(serial) === true) copies++;
      else deliver(held);
    }
    this.#held.length = 0;
    return copies;
  }
}
