/**
 * The retained messages a SUBSCRIBE asks for, sent as the client takes them: paced by its
 * socket and in-flight window, never dropped, and never all in memory at once.
 *
 * Each new subscription adds a cursor, a lazy walk of the retained store's matches
 * (RetainedStore.live: expired ones are removed as they are met), resumed by the session's `pump` (on 'drain' and on every ack).
 * QoS 0 retained messages are written here while the socket is not congested; QoS 1/2 ones
 * are handed to the session to send under a packet id while its window has room. Retained
 * messages sent on subscribe keep retain set [MQTT-3.3.1-8] and get the lower of their QoS and
 * the subscription's [MQTT-3.8.4-8]; which subscriptions get them is the SUBSCRIBE handler's
 * business (Retain Handling, section 3.8.3.1).
 *
 * Live messages routed to the session while a replay is under way wait behind it, as they did
 * behind the retained messages written all at once before pacing: QoS 1/2 in the session's
 * queue, QoS 0 in `#held` (bounded by the session queue's caps; over them, counted
 * `queue_full`). So on every topic the retained state comes before what was published after
 * it [MQTT-4.6.0-5]. A held live message that is itself the retained message of its topic
 * supersedes its retained copy, which is then not replayed: it arrives once, live (retain
 * flag as a live delivery carries it, [MQTT-3.3.1-12], [MQTT-3.3.1-13]).
 *
 * A replay belongs to its connection: when the connection goes, what was not sent is not
 * kept (a later SUBSCRIBE asks again). UNSUBSCRIBE stops its filter's cursor [MQTT-3.10.4-2].
 */
import type { QoS } from '../protocol/index.ts';
import type { Message } from '../router/index.ts';
import { type Delivery, DeliveryQueue } from './delivery-queue.ts';
import type { BrokerStats, SessionGroup, SessionLink } from './host.ts';
import type { InflightWindow } from './inflight.ts';

interface Cursor {
  readonly filter: string;
  readonly messages: Iterator<Message>;
  readonly qos: QoS;
  readonly subscriptionIds: number[] | undefined;
}

export class RetainedReplay {
  readonly #cursors: Cursor[] = [];
  /** The first cursor's message taken from the store but not yet sent (the window was full). */
  #pending: Message | undefined;
  readonly #held: DeliveryQueue;
  /** Retained messages a held live delivery supersedes. */
  readonly #superseded = new Set<Message>();
  readonly #stats: BrokerStats;

  /** Held live messages are bounded by the session queue's caps. */
  constructor(caps: { maxQueuedMessages: number; maxQueuedBytes: number }, stats: BrokerStats) {
    this.#held = new DeliveryQueue(caps);
    this.#stats = stats;
  }

  add(filter: string, messages: Iterator<Message>, qos: QoS, subscriptionIds: number[] | undefined): void {
    this.#cursors.push({ filter, messages, qos, subscriptionIds });
  }

  /** Stops the cursors of `filter` (it was unsubscribed) [MQTT-3.10.4-2]. */
  remove(filter: string): void {
    for (let i = this.#cursors.length - 1; i >= 0; i--) {
      if (this.#cursors[i]!.filter !== filter) continue;
      if (i === 0) this.#pending = undefined;
      this.#cursors.splice(i, 1);
    }
  }

  /**
   * A live delivery routed while the replay runs: QoS 0 is held here (true; over the caps,
   * dropped and counted), QoS 1/2 is left to the session's queue (false). A live retained
   * message supersedes its retained copy; the set of them is bounded by the same count cap
   * (past it, a retained copy may arrive as well as its live message: twice, never lost).
   */
  hold(
    message: Message,
    qos: QoS,
    retain: boolean,
    ids: number[] | undefined,
    group?: SessionGroup,
  ): boolean {
    if (qos !== 0) {
      this.#supersede(message);
      return false;
    }
    if (this.#held.push({ message: message.detach(), qos, retain, subscriptionIds: ids, group, seq: 0 }))
      this.#supersede(message);
    else this.#stats.droppedQueueFull++;
    return true;
  }

  #supersede(message: Message): void {
    if (message.retain && this.#superseded.size < this.#held.maxMessages) this.#superseded.add(message);
  }

  /**
   * Sends what the link takes now: retained messages (QoS 1/2 through `send`, the session's,
   * while `window` has room), then, once every cursor is done, the held live QoS 0 ones.
   * True when all is sent; false when it waits for a 'drain' or an ack.
   */
  run(link: SessionLink, window: InflightWindow, send: (d: Delivery) => void): boolean {
    while (this.#cursors.length > 0) {
      if (link.congested) return false;
      const cursor = this.#cursors[0]!;
      const message = this.#pending ?? this.#take(cursor);
      this.#pending = undefined;
      if (message === undefined) {
        this.#cursors.shift();
        continue;
      }
      const qos = Math.min(message.qos, cursor.qos) as QoS; // [MQTT-3.8.4-8]
      if (qos === 0) {
        sendQos0(link, message, true, cursor.subscriptionIds, this.#stats); // [MQTT-3.3.1-8]
      } else if (window.unsent === 0 && window.outstanding < link.window) {
        send({
          message,
          qos,
          retain: true,
          subscriptionIds: cursor.subscriptionIds,
          group: undefined,
          seq: 0,
        });
      } else {
        this.#pending = message;
        return false;
      }
    }
    while (this.#held.length > 0) {
      if (link.congested) return false;
      const d = this.#held.shift()!;
      sendQos0(link, d.message, d.retain, d.subscriptionIds, this.#stats);
    }
    return true;
  }

  /** The cursor's next message not superseded; undefined when it has no more. */
  #take(cursor: Cursor): Message | undefined {
    for (;;) {
      const next = cursor.messages.next();
      if (next.done === true) return undefined;
      const message = next.value;
      if (!this.#superseded.has(message)) return message;
    }
  }
}

/** The options of every QoS 0 send, reused: sendPublish reads them during the call only. */
const qos0 = {
  qos: 0 as QoS,
  retain: false,
  subscriptionIds: undefined as number[] | undefined,
  packetId: 0,
  dup: false,
};

/** Writes a QoS 0 PUBLISH; one over the client's Maximum Packet Size is dropped, counted. */
export function sendQos0(
  link: SessionLink,
  message: Message,
  retain: boolean,
  ids: number[] | undefined,
  stats: BrokerStats,
): void {
  qos0.retain = retain;
  qos0.subscriptionIds = ids;
  if (!link.sendPublish(message, qos0)) stats.droppedTooLarge++; // [MQTT-3.1.2-25]
}
