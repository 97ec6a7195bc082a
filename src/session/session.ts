/**
 * A client's session: the state that outlives a network connection (section 4.1).
 *
 * Holds the subscriptions, the outbound in-flight window (QoS 1 awaiting PUBACK, QoS 2
 * awaiting PUBREC then PUBCOMP), the queue of QoS 1/2 deliveries not yet sent, the inbound
 * QoS 2 packet ids awaiting PUBREL, the expiry interval and any delayed will.
 *
 * Invariants:
 * - At most `window` outbound QoS 1/2 messages are unacknowledged, where window is the
 *   connection's limit (the client's Receive Maximum in v5 [MQTT-3.3.4-9], config otherwise).
 * - Queued deliveries leave the queue in order; a delivery is either queued, in flight, or
 *   gone, so ordering per publisher and topic holds [MQTT-4.6.0-5].
 * - Packet ids of in-flight messages are unique and non-zero [MQTT-2.2.1-3].
 * - On resume, in-flight messages are re-sent first, in order, PUBLISH with DUP set or PUBREL
 *   as their state says [MQTT-4.4.0-1], [MQTT-4.4.0-2]. The send quota starts afresh with each
 *   connection (section 4.9): PUBLISHes beyond the new window stay in flight, marked `unsent`,
 *   and go out (same packet id, DUP set) ahead of the queue as acknowledgements free the window.
 * - QoS 0 messages are never queued for an offline session.
 * - A shared-subscription delivery not yet acknowledged by this member goes to another member
 *   of its group when this one leaves (section 4.8.2): queued ones when the member
 *   unsubscribes or disconnects (if another member is connected), queued and unacknowledged
 *   in-flight ones when the session ends. PUBREC'd ones have arrived and are not re-routed.
 */
import type { ClientIdentity } from '../auth/index.ts';
import type { Broker, SessionGroup } from '../broker.ts';
import { type ErrorCode, reasonCodeOf } from '../errors.ts';
import { isSharedFilter, isValidTopicFilter, parseSharedFilter, type QoS } from '../protocol/index.ts';
import type { Message } from '../router/index.ts';
import { type Delivery, DeliveryQueue } from './delivery-queue.ts';
import { type LongTimer, setLongTimeout } from './timers.ts';

/** What the session needs from the connection currently attached to it. */
export interface SessionLink {
  readonly clientId: string;
  /** Outbound QoS 1/2 messages allowed in flight. */
  readonly window: number;
  /** True while the socket's unsent bytes exceed the bound. */
  readonly congested: boolean;
  /** Writes a PUBLISH; false when the client's Maximum Packet Size refuses it. */
  sendPublish(
    message: Message,
    qos: QoS,
    retain: boolean,
    subscriptionIds: number[] | undefined,
    packetId: number,
    dup: boolean,
  ): boolean;
  sendPubrel(packetId: number): void;
  /** Closes the connection from the server side (v5: DISCONNECT with the code's reason). */
  disconnect(code: ErrorCode, detail: string): void;
  /** Who the client authenticated as (absent for links that did not authenticate). */
  readonly identity?: ClientIdentity | undefined;
}

export interface Subscription {
  /** The filter as subscribed, `$share/...` prefix included. */
  readonly topicFilter: string;
  readonly qos: QoS;
  readonly noLocal: boolean;
  readonly retainAsPublished: boolean;
  readonly retainHandling: 0 | 1 | 2;
  readonly subscriptionId: number | undefined;
  /** For shared subscriptions: the share name and the inner filter. */
  readonly share: { name: string; filter: string } | undefined;
}

interface Inflight extends Delivery {
  packetId: number;
  /** 'puback' / 'pubrec' await those; 'pubcomp' means PUBREL was sent. */
  awaiting: 'puback' | 'pubrec' | 'pubcomp';
  /** Not yet re-sent on the current connection: the window was full when it resumed. */
  unsent: boolean;
}

const TOPIC_FILTER_INVALID = reasonCodeOf('TOPIC_FILTER_INVALID');

export interface SubscribeOutcome {
  /** Granted QoS, or a failure reason code (v5: 0x8F; the caller maps it for v3). */
  code: number;
  subscription: Subscription | undefined;
  isNew: boolean;
}

export class Session {
  readonly clientId: string;
  readonly broker: Broker;
  readonly subscriptions = new Map<string, Subscription>();
  /** Inbound QoS 2 packet ids whose PUBREL has not arrived [MQTT-4.3.3-9]. */
  readonly inboundQos2 = new Set<number>();
  /** Seconds the session outlives its connection; 0xFFFFFFFF never expires. */
  expiryInterval = 0;
  link: SessionLink | undefined;
  readonly #inflight = new Map<number, Inflight>();
  /** In-flight entries marked `unsent`; they hold a packet id but no window slot. */
  #unsent = 0;
  readonly #queue: DeliveryQueue;
  #nextPacketId = 1;
  #expiryTimer: LongTimer | undefined;
  #will: { message: Message; timer: LongTimer } | undefined;

  constructor(clientId: string, broker: Broker) {
    this.clientId = clientId;
    this.broker = broker;
    this.#queue = new DeliveryQueue(broker.config.maxQueuedMessages, broker.config.maxQueuedBytes);
  }

  get inflightCount(): number {
    return this.#inflight.size;
  }

  /** Unacknowledged QoS 1/2 messages sent on the current connection: what the window limits. */
  get #outstanding(): number {
    return this.#inflight.size - this.#unsent;
  }

  get queuedCount(): number {
    return this.#queue.length;
  }

  // ---- subscriptions ----

  subscribe(
    req: {
      topicFilter: string;
      qos: QoS;
      noLocal: boolean;
      retainAsPublished: boolean;
      retainHandling: 0 | 1 | 2;
    },
    subscriptionId: number | undefined,
  ): SubscribeOutcome {
    let share: Subscription['share'];
    if (isSharedFilter(req.topicFilter)) {
      const parsed = parseSharedFilter(req.topicFilter);
      if (parsed === undefined) return { code: TOPIC_FILTER_INVALID, subscription: undefined, isNew: false }; // [MQTT-4.8.2-1]
      share = { name: parsed.shareName, filter: parsed.filter };
    } else if (!isValidTopicFilter(req.topicFilter)) {
      return { code: TOPIC_FILTER_INVALID, subscription: undefined, isNew: false }; // [MQTT-4.7.1-2], [MQTT-4.7.1-3]
    }
    const qos = Math.min(req.qos, this.broker.config.maximumQoS) as QoS; // [MQTT-3.8.4-6]
    const sub: Subscription = {
      topicFilter: req.topicFilter,
      qos,
      noLocal: req.noLocal,
      retainAsPublished: req.retainAsPublished,
      retainHandling: req.retainHandling,
      subscriptionId,
      share,
    };
    // A subscription to an existing filter replaces it [MQTT-3.8.4-3].
    const isNew = !this.subscriptions.has(req.topicFilter);
    this.subscriptions.set(req.topicFilter, sub);
    if (share === undefined) this.broker.index.add(sub.topicFilter, this, sub);
    else this.broker.index.addShared(share.name, share.filter, this, sub);
    return { code: qos, subscription: sub, isNew };
  }

  unsubscribe(topicFilter: string): boolean {
    const sub = this.subscriptions.get(topicFilter);
    if (sub === undefined) return false;
    this.subscriptions.delete(topicFilter);
    if (sub.share === undefined) {
      this.broker.index.remove(topicFilter, this);
      return true;
    }
    this.broker.index.removeShared(sub.share.name, sub.share.filter, this);
    // In-flight ones complete here [MQTT-3.10.4-3]; those not yet sent go to another member.
    const share = sub.share;
    this.#handBack(
      this.#queue.extract((d) => d.group?.shareName === share.name && d.group.filter === share.filter),
      false,
    );
    return true;
  }

  /** Gives shared-group deliveries to other members of their groups. */
  #handBack(deliveries: Delivery[], connectedOnly: boolean): void {
    for (const d of deliveries) {
      if (!this.broker.redeliverShared(d.message, d.group!, this, connectedOnly)) {
        if (connectedOnly) this.#queue.push(d); // no one better placed: keep it for our resume
      }
    }
  }

  // ---- outbound ----

  /**
   * Delivers a routed message given every subscription of this session that matched it:
   * one PUBLISH at the highest granted QoS, carrying every matching subscription id.
   */
  deliverMatched(message: Message, subs: Subscription[], group?: SessionGroup): void {
    let qos = -1;
    let retain = false;
    let ids: number[] | undefined;
    for (const sub of subs) {
      if (sub.noLocal && message.senderId === this.clientId) continue; // [MQTT-3.8.3-3]
      if (sub.qos > qos) qos = sub.qos;
      if (sub.retainAsPublished) retain = message.retain; // [MQTT-3.3.1-12], [MQTT-3.3.1-13]
      if (sub.subscriptionId !== undefined) (ids ??= []).push(sub.subscriptionId); // [MQTT-3.3.4-3]
    }
    if (qos < 0) return;
    // [MQTT-3.3.1-9] (3.1.1): live deliveries carry retain 0 unless Retain As Published.
    this.deliver(message, Math.min(qos, message.qos) as QoS, retain, ids, group);
  }

  deliver(
    message: Message,
    qos: QoS,
    retain: boolean,
    subscriptionIds: number[] | undefined,
    group?: SessionGroup,
  ): void {
    const link = this.link;
    if (qos === 0) {
      if (link === undefined) return;
      if (link.congested) {
        this.broker.stats.droppedCongested++;
        return;
      }
      if (!link.sendPublish(message, 0, retain, subscriptionIds, 0, false))
        this.broker.stats.droppedTooLarge++;
      return;
    }
    const delivery: Delivery = { message, qos, retain, subscriptionIds, group };
    if (
      link !== undefined &&
      this.#unsent === 0 &&
      this.#queue.length === 0 &&
      !link.congested &&
      this.#outstanding < link.window
    ) {
      this.#send(link, delivery);
      return;
    }
    if (!this.#queue.push(delivery)) {
      this.broker.stats.droppedQueueFull++;
      return;
    }
    message.detach();
  }

  #send(link: SessionLink, d: Delivery): void {
    const packetId = this.#allocatePacketId();
    const sent = link.sendPublish(d.message, d.qos, d.retain, d.subscriptionIds, packetId, false);
    if (!sent) {
      this.broker.stats.droppedTooLarge++;
      return;
    }
    // Kept until acknowledged, so the payload must not pin the socket chunk it arrived in.
    d.message.detach();
    // One object shape for every in-flight entry (adding fields to a Delivery changes its shape).
    this.#inflight.set(packetId, {
      message: d.message,
      qos: d.qos,
      retain: d.retain,
      subscriptionIds: d.subscriptionIds,
      group: d.group,
      packetId,
      awaiting: d.qos === 1 ? 'puback' : 'pubrec',
      unsent: false,
    });
  }

  #allocatePacketId(): number {
    let id = this.#nextPacketId;
    while (this.#inflight.has(id)) id = id === 0xffff ? 1 : id + 1;
    this.#nextPacketId = id === 0xffff ? 1 : id + 1;
    return id;
  }

  /** Sends in-flight messages held back at resume, then queued ones, while window and socket allow. */
  pump(): void {
    const link = this.link;
    if (link === undefined) return;
    if (this.#unsent > 0) {
      for (const entry of this.#inflight.values()) {
        if (this.#unsent === 0 || link.congested || this.#outstanding >= link.window) break;
        if (entry.unsent) this.#resend(link, entry);
      }
    }
    const now = Date.now();
    while (
      this.#unsent === 0 &&
      this.#queue.length > 0 &&
      !link.congested &&
      this.#outstanding < link.window
    ) {
      const d = this.#queue.shift()!;
      if (d.message.expired(now)) continue; // [MQTT-3.3.2-5]
      this.#send(link, d);
    }
  }

  /**
   * Re-sends an in-flight PUBLISH with DUP set. One too large for this connection's Maximum
   * Packet Size is dropped as if delivered [MQTT-3.1.2-25]; returns false then.
   */
  #resend(link: SessionLink, entry: Inflight): boolean {
    this.#markSent(entry);
    if (link.sendPublish(entry.message, entry.qos, entry.retain, entry.subscriptionIds, entry.packetId, true))
      return true;
    this.#inflight.delete(entry.packetId);
    this.broker.stats.droppedTooLarge++;
    return false;
  }

  #markSent(entry: Inflight): void {
    if (entry.unsent) this.#unsent--;
    entry.unsent = false;
  }

  /** PUBACK: the QoS 1 exchange is complete. False when no QoS 1 message had this id. */
  acknowledge(packetId: number): boolean {
    const entry = this.#inflight.get(packetId);
    if (entry === undefined || entry.awaiting !== 'puback') return false;
    this.#markSent(entry); // an early PUBACK for a message not yet re-sent completes it too
    this.#inflight.delete(packetId);
    this.pump();
    return true;
  }

  /** PUBREC: returns false when no QoS 2 message awaited it. A failure code ends the exchange. */
  received(packetId: number, reasonCode: number): boolean {
    const entry = this.#inflight.get(packetId);
    if (entry === undefined || entry.awaiting === 'puback') return false;
    this.#markSent(entry);
    if (reasonCode >= 0x80) {
      this.#inflight.delete(packetId); // [MQTT-4.3.3-4] no PUBREL after a failure PUBREC (v5)
      this.pump();
      return true;
    }
    entry.awaiting = 'pubcomp';
    return true;
  }

  /** PUBCOMP: the QoS 2 exchange is complete. */
  completed(packetId: number): boolean {
    const entry = this.#inflight.get(packetId);
    if (entry === undefined || entry.awaiting !== 'pubcomp') return false;
    this.#inflight.delete(packetId);
    this.pump();
    return true;
  }

  // ---- connection lifecycle ----

  /** Attaches a connection: cancels expiry and any delayed will, re-sends in-flight, drains the queue. */
  attach(link: SessionLink): void {
    this.link = link;
    this.#expiryTimer?.cancel();
    this.#expiryTimer = undefined;
    this.#will?.timer.cancel(); // [MQTT-3.1.3-9] will delay: reconnected in time
    this.#will = undefined;
    // The new connection's window starts empty (section 4.9): PUBRELs always go out, PUBLISHes
    // only while the window has room [MQTT-3.3.4-9]; the rest wait, marked unsent, for pump().
    this.#unsent = 0;
    let sent = 0;
    for (const entry of [...this.#inflight.values()]) {
      entry.unsent = false;
      if (entry.awaiting === 'pubcomp') {
        link.sendPubrel(entry.packetId);
        sent++;
      } else if (sent < link.window) {
        if (this.#resend(link, entry)) sent++;
      } else {
        entry.unsent = true;
        this.#unsent++;
      }
    }
    this.pump();
  }

  /** The connection has gone: start the expiry clock (the broker ends the session at 0). */
  detach(onExpire: () => void): void {
    this.link = undefined;
    // Queued shared messages are better served by a connected member than by waiting for us.
    if (this.#queue.length > 0) this.#handBack(this.#queue.extract(isShared), true);
    if (this.expiryInterval > 0 && this.expiryInterval < 0xffffffff) {
      this.#expiryTimer = setLongTimeout(onExpire, this.expiryInterval * 1000);
    }
  }

  /** Holds a will until `delaySeconds` pass (then publishes it) or the session resumes. */
  delayWill(message: Message, delaySeconds: number): void {
    const timer = setLongTimeout(() => {
      this.#will = undefined;
      this.broker.publish(message);
    }, delaySeconds * 1000);
    this.#will = { message, timer };
  }

  /** Ends the session: a pending will is published now [MQTT-3.1.2-8]; state is dropped. */
  end(): void {
    this.#expiryTimer?.cancel();
    this.#expiryTimer = undefined;
    const will = this.#will;
    this.#will = undefined;
    if (will !== undefined) {
      will.timer.cancel();
      this.broker.publish(will.message);
    }
    for (const filter of [...this.subscriptions.keys()]) this.unsubscribe(filter);
    // Shared messages this member never completed go to another member (section 4.8.2);
    // one it acknowledged with PUBREC has arrived and stays delivered.
    const unfinished: Delivery[] = [];
    for (const entry of this.#inflight.values()) {
      if (entry.group !== undefined && entry.awaiting !== 'pubcomp') unfinished.push(entry);
    }
    this.#inflight.clear();
    unfinished.push(...this.#queue.extract(isShared));
    this.#handBack(unfinished, false);
    this.#unsent = 0;
    this.#queue.clear();
    this.inboundQos2.clear();
  }
}

const isShared = (d: Delivery): boolean => d.group !== undefined;
