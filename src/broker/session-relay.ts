/**
 * What a session handed over to another cluster node leaves behind for a moment: its plain
 * subscriptions, kept in this broker's index under a relay that collects every message routed
 * to them, until the new node's interest has reached every node (src/cluster/session-handover.ts
 * decides when, and sends what was collected, the session's tail, to the new node).
 *
 * Without it, a message published while the session is in transit (this node's subscriptions
 * gone, the new node's not yet known to the publisher's node) reaches no one.
 *
 * Invariants:
 * - Installed before the session leaves the index, in the same turn: the filters never lose
 *   their last subscriber here meanwhile (no interest withdrawn, no message missed), and the
 *   session's state taken out plus the relay's messages are everything routed to it, once.
 * - It delivers nothing and writes nothing: messages are kept (detached) in the order routed,
 *   at most `limit` (beyond it each is dropped and counted). `end` removes it from the index.
 * - `$share` memberships are not relayed (a group's member is chosen per message, and other
 *   members are there for it).
 */
import type { Message, TopicIndex } from '../router/index.ts';
import type { RoutedSession, Subscription } from '../session/index.ts';

export class SessionRelay implements RoutedSession {
  readonly clientId: string;
  readonly link = undefined;
  readonly subscriptions = new Map<string, Subscription>();
  readonly #index: TopicIndex<RoutedSession, Subscription>;
  readonly #limit: number;
  #messages: Message[] = [];
  #ended = false;
  /** Messages not kept because `limit` were. */
  dropped = 0;

  constructor(
    index: TopicIndex<RoutedSession, Subscription>,
    clientId: string,
    subscriptions: Iterable<Subscription>,
    limit: number,
  ) {
    this.clientId = clientId;
    this.#index = index;
    this.#limit = limit;
    for (const sub of subscriptions) {
      if (sub.share !== undefined) continue;
      this.subscriptions.set(sub.topicFilter, sub);
      index.add(sub.topicFilter, this, sub);
    }
  }

  /** The plain filters relayed. */
  get filters(): IterableIterator<string> {
    return this.subscriptions.keys();
  }

  deliverMatched(message: Message): boolean {
    if (this.#ended) return false;
    if (this.#messages.length >= this.#limit) {
      this.dropped++;
      return false;
    }
    this.#messages.push(message.detach());
    return false;
  }

  /** Leaves the index; the messages collected, in the order routed. */
  end(): Message[] {
    if (this.#ended) return [];
    this.#ended = true;
    for (const filter of this.subscriptions.keys()) this.#index.remove(filter, this);
    const messages = this.#messages;
    this.#messages = [];
    return messages;
  }
}
