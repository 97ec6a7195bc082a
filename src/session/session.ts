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
 * - A persistent session (expiry interval > 0) mirrors every change to the broker's message
 *   store as it happens: its record (expiry deadline, delayed will), subscriptions, each QoS 1/2
 *   delivery from queued through sent and PUBREC'd to gone (`seq` names it in the store), and
 *   inbound QoS 2 ids. A session that stops being persistent is removed from the store. QoS 0
 *   deliveries never touch the store. `restore` rebuilds a session from what was stored.
 */
import type { ClientIdentity } from '../auth/index.ts';
import type { Broker, SessionGroup } from '../broker.ts';
import { type ErrorCode, reasonCodeOf } from '../errors.ts';
import { isSharedFilter, isValidTopicFilter, parseSharedFilter, type QoS } from '../protocol/index.ts';
import { Message } from '../router/index.ts';
import type { OutboundState, StoredMessage, StoredSession } from '../store/index.ts';
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
const NEVER = 0xffffffff;

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
  link: SessionLink | undefined;
  #expiryInterval = 0;
  /** Epoch ms the disconnected session expires (meaningful while detached). */
  #expiresAt: number | undefined;
  /** True while the session is written to the message store. */
  #stored = false;
  readonly #inflight = new Map<number, Inflight>();
  /** In-flight entries marked `unsent`; they hold a packet id but no window slot. */
  #unsent = 0;
  readonly #queue: DeliveryQueue;
  #nextPacketId = 1;
  #expiryTimer: LongTimer | undefined;
  #will: { message: Message; publishAt: number; timer: LongTimer } | undefined;

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

  /** Seconds the session outlives its connection; 0xFFFFFFFF never expires. */
  get expiryInterval(): number {
    return this.#expiryInterval;
  }

  /** Setting it makes the session persistent (> 0, written to the store) or not (0, removed). */
  set expiryInterval(seconds: number) {
    const changed = seconds !== this.#expiryInterval;
    this.#expiryInterval = seconds;
    if (seconds > 0 && !this.#stored) this.#storeAll();
    else if (seconds === 0 && this.#stored) {
      this.#stored = false;
      this.broker.store.deleteSession(this.broker.id, this.clientId);
    } else if (changed) this.#storeState();
  }

  // ---- persistence ----

  /** Writes the whole session: it has just become persistent. */
  #storeAll(): void {
    this.#stored = true;
    const store = this.broker.store;
    const id = this.broker.id;
    this.#storeState();
    for (const sub of this.subscriptions.values()) store.putSubscription(id, this.clientId, sub);
    for (const entry of this.#inflight.values()) this.#storeDelivery(entry, stateOf(entry), entry.packetId);
    this.#queue.forEach((d) => {
      this.#storeDelivery(d, 'queued', 0);
    });
    for (const packetId of this.inboundQos2) store.addInboundQos2(id, this.clientId, packetId);
  }

  #storeState(): void {
    if (!this.#stored) return;
    const will = this.#will;
    this.broker.store.putSession(this.broker.id, {
      clientId: this.clientId,
      expiryInterval: this.#expiryInterval,
      expiresAt: this.link === undefined ? this.#expiresAt : undefined,
      will: will === undefined ? undefined : { message: will.message, publishAt: will.publishAt },
    });
  }

  #storeDelivery(d: Delivery, state: OutboundState, packetId: number): void {
    d.seq = this.broker.store.nextSeq();
    this.broker.store.putOutbound(this.broker.id, this.clientId, {
      seq: d.seq,
      state,
      packetId,
      qos: d.qos as 1 | 2,
      retain: d.retain,
      subscriptionIds: d.subscriptionIds,
      message: d.message,
    });
  }

  /** The delivery is gone (completed, expired, dropped, handed to another member). */
  #unstore(d: Delivery): void {
    if (d.seq === 0) return;
    if (this.#stored) this.broker.store.deleteOutbound(this.broker.id, this.clientId, d.seq);
    d.seq = 0;
  }

  /** Records an inbound QoS 2 packet id awaiting PUBREL [MQTT-4.3.3-9]. */
  addInboundQos2(packetId: number): void {
    this.inboundQos2.add(packetId);
    if (this.#stored) this.broker.store.addInboundQos2(this.broker.id, this.clientId, packetId);
  }

  /** PUBREL arrived: false when the id was not awaiting one. */
  releaseInboundQos2(packetId: number): boolean {
    if (!this.inboundQos2.delete(packetId)) return false;
    if (this.#stored) this.broker.store.deleteInboundQos2(this.broker.id, this.clientId, packetId);
    return true;
  }

  /**
   * Rebuilds the session from the store at start: subscriptions into the index, outbound
   * entries back into the in-flight window (sent, PUBREC'd) or the queue, inbound ids. The
   * session is detached; the broker then arms (or runs) its will and expiry.
   */
  restore(stored: StoredSession): void {
    this.#expiryInterval = stored.expiryInterval;
    for (const sub of stored.subscriptions) this.subscribe(sub, sub.subscriptionId);
    for (const o of stored.outbound) {
      const message = messageOf(o.message);
      if (o.state === 'queued') {
        this.#queue.force({
          message,
          qos: o.qos,
          retain: o.retain,
          subscriptionIds: o.subscriptionIds,
          group: undefined,
          seq: o.seq,
        });
        continue;
      }
      this.#inflight.set(o.packetId, {
        message,
        qos: o.qos,
        retain: o.retain,
        subscriptionIds: o.subscriptionIds,
        group: undefined,
        seq: o.seq,
        packetId: o.packetId,
        awaiting: o.state === 'released' ? 'pubcomp' : o.qos === 1 ? 'puback' : 'pubrec',
        unsent: false,
      });
    }
    for (const id of stored.inboundQos2) this.inboundQos2.add(id);
    this.#stored = true;
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
    if (this.#stored) this.broker.store.putSubscription(this.broker.id, this.clientId, sub);
    if (share === undefined) this.broker.index.add(sub.topicFilter, this, sub);
    else this.broker.index.addShared(share.name, share.filter, this, sub);
    return { code: qos, subscription: sub, isNew };
  }

  unsubscribe(topicFilter: string): boolean {
    const sub = this.subscriptions.get(topicFilter);
    if (sub === undefined) return false;
    this.subscriptions.delete(topicFilter);
    if (this.#stored) this.broker.store.deleteSubscription(this.broker.id, this.clientId, topicFilter);
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
      if (this.broker.redeliverShared(d.message, d.group!, this, connectedOnly)) this.#unstore(d);
      else if (connectedOnly)
        this.#queue.force(d); // no one better placed: keep it for our resume
      else this.#unstore(d);
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
    const delivery: Delivery = { message, qos, retain, subscriptionIds, group, seq: 0 };
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
    if (!this.#queue.push(delivery) && !this.#makeRoom(delivery)) {
      this.broker.stats.droppedQueueFull++;
      return;
    }
    message.detach();
    if (this.#stored) this.#storeDelivery(delivery, 'queued', 0);
  }

  /** `queueOverflow: drop-oldest`: drops queued deliveries, oldest first, until `d` fits. */
  #makeRoom(d: Delivery): boolean {
    if (this.broker.config.queueOverflow !== 'drop-oldest') return false;
    while (this.#queue.length > 0) {
      this.#unstore(this.#queue.shift()!);
      this.broker.stats.droppedQueueFull++;
      if (this.#queue.push(d)) return true;
    }
    return false;
  }

  #send(link: SessionLink, d: Delivery): void {
    const packetId = this.#allocatePacketId();
    const sent = link.sendPublish(d.message, d.qos, d.retain, d.subscriptionIds, packetId, false);
    if (!sent) {
      this.broker.stats.droppedTooLarge++;
      this.#unstore(d);
      return;
    }
    // Kept until acknowledged, so the payload must not pin the socket chunk it arrived in.
    d.message.detach();
    if (this.#stored) {
      if (d.seq === 0) this.#storeDelivery(d, 'sent', packetId);
      else this.broker.store.setOutboundState(this.broker.id, this.clientId, d.seq, 'sent', packetId);
    }
    // One object shape for every in-flight entry (adding fields to a Delivery changes its shape).
    this.#inflight.set(packetId, {
      message: d.message,
      qos: d.qos,
      retain: d.retain,
      subscriptionIds: d.subscriptionIds,
      group: d.group,
      seq: d.seq,
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
      if (d.message.expired(now)) {
        this.#unstore(d); // [MQTT-3.3.2-5]
        continue;
      }
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
    this.#unstore(entry);
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
    this.#unstore(entry);
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
      this.#unstore(entry);
      this.pump();
      return true;
    }
    entry.awaiting = 'pubcomp';
    if (this.#stored && entry.seq !== 0)
      this.broker.store.setOutboundState(this.broker.id, this.clientId, entry.seq, 'released', packetId);
    return true;
  }

  /** PUBCOMP: the QoS 2 exchange is complete. */
  completed(packetId: number): boolean {
    const entry = this.#inflight.get(packetId);
    if (entry === undefined || entry.awaiting !== 'pubcomp') return false;
    this.#inflight.delete(packetId);
    this.#unstore(entry);
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
    this.#storeState();
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
    this.#expiresAt = undefined;
    if (this.#expiryInterval > 0 && this.#expiryInterval < NEVER) {
      this.#expireIn(this.#expiryInterval * 1000, onExpire);
    }
    this.#storeState();
  }

  /** Arms the expiry clock of a detached session (at detach, or at start for a restored one). */
  #expireIn(ms: number, onExpire: () => void): void {
    this.#expiresAt = Date.now() + ms;
    this.#expiryTimer = setLongTimeout(onExpire, ms);
  }

  /**
   * A restored session's clock: its stored deadline, or a full interval when it was connected
   * when the server stopped. False when the deadline has passed (the caller expires it).
   */
  resumeExpiry(expiresAt: number | undefined, now: number, onExpire: () => void): boolean {
    if (this.#expiryInterval >= NEVER) return true;
    const left = expiresAt === undefined ? this.#expiryInterval * 1000 : expiresAt - now;
    if (left <= 0) return false;
    this.#expireIn(left, onExpire);
    this.#storeState();
    return true;
  }

  /** Holds a will until `delaySeconds` pass (then publishes it) or the session resumes. */
  delayWill(message: Message, delaySeconds: number): void {
    const timer = setLongTimeout(() => {
      this.#will = undefined;
      this.#storeState();
      this.broker.publish(message);
    }, delaySeconds * 1000);
    this.#will = { message, publishAt: Date.now() + delaySeconds * 1000, timer };
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
    // Everything of the session leaves the store at once; later writes are not needed.
    if (this.#stored) this.broker.store.deleteSession(this.broker.id, this.clientId);
    this.#stored = false;
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

const stateOf = (entry: Inflight): OutboundState => (entry.awaiting === 'pubcomp' ? 'released' : 'sent');

/** A stored message as the broker's Message (its payload is already its own copy). */
export function messageOf(m: StoredMessage): Message {
  return new Message({
    topic: m.topic,
    payload: m.payload,
    qos: m.qos,
    retain: m.retain,
    properties: m.properties,
    senderId: m.senderId,
    receivedAt: m.receivedAt,
    messageExpiryInterval: m.expiresAt === undefined ? undefined : (m.expiresAt - m.receivedAt) / 1000,
    detached: true,
  });
}
