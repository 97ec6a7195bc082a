/**
 * A client's session: the state that outlives a network connection (section 4.1).
 *
 * Holds the subscriptions, the outbound in-flight window (QoS 1 awaiting PUBACK, QoS 2
 * awaiting PUBREC then PUBCOMP: inflight.ts), the queue of QoS 1/2 deliveries not yet sent
 * (delivery-queue.ts), the inbound QoS 2 packet ids awaiting PUBREL, the expiry interval and
 * the clocks of a detached session (session-clock.ts). What it needs of its broker and of its
 * connection is stated in host.ts; a persistent session mirrors itself into the message store
 * through session-storage.ts, and `restore` rebuilds it from there.
 *
 * Invariants:
 * - At most `window` outbound QoS 1/2 messages are unacknowledged, where window is the
 *   connection's limit (the client's Receive Maximum in v5 [MQTT-3.3.4-9], config otherwise).
 * - Queued deliveries leave the queue in order; a delivery is either queued, in flight, or
 *   gone, so ordering per publisher and topic holds [MQTT-4.6.0-5].
 * - On resume, in-flight messages are re-sent first, in order, PUBLISH with DUP set or PUBREL
 *   as their state says [MQTT-4.4.0-1], [MQTT-4.4.0-2]. The send quota starts afresh with each
 *   connection (section 4.9): PUBLISHes beyond the new window stay in flight, marked `unsent`,
 *   and go out (same packet id, DUP set) ahead of the queue as acknowledgements free the window.
 * - QoS 0 messages are never queued for an offline session, and never stored.
 * - Retained messages for a new subscription go out paced (retained-replay.ts); live ones
 *   routed meanwhile wait behind them.
 * - A shared-subscription delivery not yet acknowledged by this member goes to another member
 *   of its group when this one leaves (section 4.8.2): queued ones when the member
 *   unsubscribes or disconnects (if another member is connected), queued and unacknowledged
 *   in-flight QoS 1 ones when the session ends. A QoS 2 one sent to this member goes to no
 *   other client [MQTT-4.8.2-5].
 * - Every change that may need a commit before it is acknowledged returns whether it wrote to
 *   the store (`deliver`, `addInboundQos2`, and the outcome of the client's acks).
 */
import { isFailureReason, reasonCodeOf } from '../errors.ts';
import type { QoS } from '../protocol/index.ts';
import type { Message } from '../router/index.ts';
import type { StoredSession } from '../store/index.ts';
import { type Delivery, DeliveryQueue } from './delivery-queue.ts';
import type { RoutedSession, SessionGroup, SessionHost, SessionLink, Subscription } from './host.ts';
import { type Inflight, InflightWindow, inflightEntry, newInflight } from './inflight.ts';
import type { MoveHold } from './move-hold.ts';
import { RetainedReplay, sendQos0 } from './retained-replay.ts';
import { SessionClock } from './session-clock.ts';
import {
  type AckOutcome,
  filterShare,
  type SessionView,
  type SubscribeOutcome,
  type SubscribeRequest,
} from './session-outcomes.ts';
import { restoredDelivery, type SessionParts, sessionView, snapshot } from './session-snapshot.ts';
import { SessionStorage } from './session-storage.ts';
import { markAway } from './shared-away.ts';

const TOPIC_FILTER_INVALID = reasonCodeOf('TOPIC_FILTER_INVALID');

const outcome = (wrote: boolean): AckOutcome => (wrote ? 'written' : 'unwritten');

export class Session implements RoutedSession {
  readonly clientId: string;
  readonly broker: SessionHost;
  readonly subscriptions = new Map<string, Subscription>();
  /** Inbound QoS 2 packet ids whose PUBREL has not arrived [MQTT-4.3.3-9]. */
  readonly inboundQos2 = new Set<number>();
  link: SessionLink | undefined;
  #expiryInterval = 0;
  readonly #storage: SessionStorage;
  readonly #clock = new SessionClock();
  readonly #inflight = new InflightWindow();
  readonly #queue: DeliveryQueue;
  /** Retained messages being sent for new subscriptions, while the connection takes them. */
  #replay: RetainedReplay | undefined;
  /** Deliveries held while the node this session left sends its tail (broker/session-moves.ts). */
  moving: MoveHold | undefined;

  constructor(clientId: string, broker: SessionHost) {
    this.clientId = clientId;
    this.broker = broker;
    this.#storage = new SessionStorage(broker.store, broker.id, clientId);
    this.#queue = new DeliveryQueue(broker.limits);
  }

  get inflightCount(): number {
    return this.#inflight.size;
  }

  get queuedCount(): number {
    return this.#queue.length;
  }

  /** A snapshot for the admin API; allocates, so never called on a message path. */
  describe(): SessionView {
    return sessionView(this.#parts(), this.link?.describe(), this.#inflight.size, this.#queue.length);
  }

  /** A will waiting for its delay (Will Delay Interval) to pass. */
  get pendingWill(): { readonly message: Message; readonly publishAt: number } | undefined {
    return this.#clock.will;
  }

  /** Seconds the session outlives its connection; 0xFFFFFFFF never expires. */
  get expiryInterval(): number {
    return this.#expiryInterval;
  }

  /** Setting it makes the session persistent (> 0, written to the store) or not (0, removed). */
  set expiryInterval(seconds: number) {
    const changed = seconds !== this.#expiryInterval;
    this.#expiryInterval = seconds;
    if (seconds > 0 && !this.#storage.active) this.#storage.writeAll(this.#parts());
    else if (seconds === 0) this.#storage.deactivate();
    else if (changed) this.#storeState();
  }

  // ---- persistence ----
  /** The session's parts, as the store and a hand-over read them (session-snapshot.ts). */
  #parts(): SessionParts {
    return {
      clientId: this.clientId,
      expiryInterval: this.#expiryInterval,
      expiresAt: this.link === undefined ? this.#clock.expiresAt : undefined,
      will: this.#clock.will,
      subscriptions: this.subscriptions.values(),
      inflight: this.#inflight.values(),
      queue: this.#queue,
      inboundQos2: this.inboundQos2,
    };
  }

  #storeState(): void {
    this.#storage.writeState(this.#parts());
  }

  /** Records an inbound QoS 2 packet id awaiting PUBREL [MQTT-4.3.3-9]; true when stored. */
  addInboundQos2(packetId: number): boolean {
    this.inboundQos2.add(packetId);
    return this.#storage.addInboundQos2(packetId);
  }

  /** PUBREL arrived (or the exchange was refused): 'unknown' when the id was not awaiting one. */
  releaseInboundQos2(packetId: number): AckOutcome {
    if (!this.inboundQos2.delete(packetId)) return 'unknown';
    return outcome(this.#storage.deleteInboundQos2(packetId));
  }

  /**
   * Rebuilds the session from the store at start: subscriptions into the index, outbound
   * entries back into the in-flight window (sent, PUBREC'd) or the queue, inbound ids. The
   * session is detached; the broker then arms (or runs) its will and expiry. `write`: the state
   * comes from another node and is written to this store, renumbered in the same order.
   */
  restore(stored: StoredSession, write = false): void {
    this.#expiryInterval = stored.expiryInterval;
    for (const sub of stored.subscriptions) this.subscribe(sub, sub.subscriptionId);
    for (const o of stored.outbound) {
      const d = restoredDelivery(o);
      if ('queued' in d) this.#queue.force(d.queued);
      else this.#inflight.add(d.inflight);
    }
    for (const id of stored.inboundQos2) this.inboundQos2.add(id);
    if (write && this.#expiryInterval > 0) this.#storage.writeAll(this.#parts());
    else this.#storage.activate();
  }

  /** The whole session as stored, left as it is (a cluster journal's snapshot). */
  stored(): StoredSession {
    return snapshot(this.#parts());
  }

  /**
   * The whole session as stored, for another node to take over (src/cluster/session-handover.ts),
   * then gone from here: no will published (the new owner's), no shared message handed back,
   * nothing left in the store (`forget`: a journal keeps it for the new owner). Detached first.
   */
  handOver(): StoredSession {
    const stored = snapshot(this.#parts());
    this.#clock.cancelExpiry();
    this.#clock.cancelWill();
    this.#storage.deactivate(true);
    this.#inflight.clear();
    this.#queue.clear(); // before unsubscribing: nothing queued is handed back
    this.#replay = undefined;
    for (const filter of [...this.subscriptions.keys()]) this.unsubscribe(filter);
    this.inboundQos2.clear();
    return stored;
  }

  // ---- subscriptions ----
  subscribe(req: SubscribeRequest, subscriptionId: number | undefined): SubscribeOutcome {
    const share = filterShare(req.topicFilter);
    if (share === null) return { code: TOPIC_FILTER_INVALID, subscription: undefined, isNew: false };
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
    this.#storage.putSubscription(sub);
    if (share === undefined) this.broker.index.add(sub.topicFilter, this, sub);
    else this.broker.index.addShared(share.name, share.filter, this, sub, this.link === undefined);
    return { code: qos, subscription: sub, isNew };
  }

  unsubscribe(topicFilter: string): boolean {
    const sub = this.subscriptions.get(topicFilter);
    if (sub === undefined) return false;
    this.subscriptions.delete(topicFilter);
    this.#storage.deleteSubscription(topicFilter);
    this.#replay?.remove(topicFilter);
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
      if (this.broker.redeliverShared(d.message, d.group!, this, connectedOnly))
        this.#storage.deleteDelivery(d);
      else if (connectedOnly)
        this.#queue.force(d); // no one better placed: keep it for our resume
      else this.#storage.deleteDelivery(d);
    }
  }

  // ---- outbound ----
  /**
   * Delivers a routed message given every subscription of this session that matched it:
   * one PUBLISH at the highest granted QoS, carrying every matching subscription id.
   * True when that wrote to the message store.
   */
  deliverMatched(message: Message, subs: Subscription[], group?: SessionGroup): boolean {
    let qos = -1;
    let retain = false;
    let ids: number[] | undefined;
    for (const sub of subs) {
      if (sub.noLocal && message.senderId === this.clientId) continue; // [MQTT-3.8.3-3]
      if (sub.qos > qos) qos = sub.qos;
      if (sub.retainAsPublished) retain = message.retain; // [MQTT-3.3.1-12], [MQTT-3.3.1-13]
      if (sub.subscriptionId !== undefined) (ids ??= []).push(sub.subscriptionId); // [MQTT-3.3.4-3]
    }
    if (qos < 0) return false;
    // [MQTT-3.3.1-9] (3.1.1): live deliveries carry retain 0 unless Retain As Published.
    return this.deliver(message, Math.min(qos, message.qos) as QoS, retain, ids, group);
  }

  /** Sends, queues or drops (counted) one delivery; true when that wrote to the message store. */
  deliver(
    message: Message,
    qos: QoS,
    retain: boolean,
    subscriptionIds: number[] | undefined,
    group?: SessionGroup,
  ): boolean {
    const link = this.link;
    if (this.moving?.hold(message, qos, retain, subscriptionIds, group)) return false;
    if (this.#replay?.hold(message, qos, retain, subscriptionIds, group)) return false;
    if (qos === 0) {
      if (link === undefined) return false;
      if (link.congested) {
        this.broker.stats[link.congestionDrop]++;
        return false;
      }
      sendQos0(link, message, retain, subscriptionIds, this.broker.stats);
      return false;
    }
    if (
      link !== undefined &&
      this.#replay === undefined &&
      this.#inflight.unsent === 0 &&
      this.#queue.length === 0 &&
      !link.congested &&
      this.#inflight.outstanding < link.window
    ) {
      return this.#send(link, newInflight(message, qos, retain, subscriptionIds, group)); // no Delivery first
    }
    return this.#enqueue({ message, qos, retain, subscriptionIds, group, seq: 0 });
  }

  /**
   * Queues a delivery. A full queue refuses it (counted), unless `queueOverflow: drop-oldest`:
   * then queued deliveries are dropped, oldest first, until it fits.
   */
  #enqueue(d: Delivery): boolean {
    let wrote = false;
    while (!this.#queue.push(d)) {
      if (this.broker.config.queueOverflow !== 'drop-oldest' || this.#queue.length === 0) {
        this.broker.stats.droppedQueueFull++;
        return wrote;
      }
      wrote = this.#storage.deleteDelivery(this.#queue.shift()!) || wrote;
      this.broker.stats.droppedQueueFull++;
    }
    d.message.detach();
    return this.#storage.putDelivery(d, 'queued', 0) || wrote;
  }

  /** Sends a new in-flight entry under a new packet id and keeps it; true when that wrote to the store. */
  #send(link: SessionLink, entry: Inflight): boolean {
    entry.packetId = this.#inflight.allocatePacketId();
    if (!link.sendPublish(entry.message, entry)) {
      this.broker.stats.droppedTooLarge++;
      return this.#storage.deleteDelivery(entry);
    }
    // Kept until acknowledged, so the payload must not pin the socket chunk it arrived in.
    entry.message.detach();
    const wrote =
      entry.seq === 0
        ? this.#storage.putDelivery(entry, 'sent', entry.packetId)
        : this.#storage.setDeliveryState(entry, 'sent', entry.packetId);
    this.#inflight.add(entry);
    return wrote;
  }

  /** Sends a new subscription's retained messages, at most at `qos`, paced (retained-replay.ts). */
  sendRetained(filter: string, messages: Iterator<Message>, qos: QoS, ids: number[] | undefined): void {
    if (this.link === undefined) return;
    this.#replay ??= new RetainedReplay(this.broker.limits, this.broker.stats);
    this.#replay.add(filter, messages, qos, ids);
    this.pump();
  }

  /** Sends held-back in-flight, then retained (and live held behind them), then queued messages. */
  pump(): void {
    const link = this.link;
    if (link === undefined) return;
    const window = this.#inflight;
    if (window.unsent > 0) {
      for (const entry of window.values()) {
        if (window.unsent === 0 || link.congested || window.outstanding >= link.window) break;
        if (entry.unsent) this.#resend(link, entry);
      }
    }
    const now = Date.now();
    if (this.#replay !== undefined) {
      if (!this.#replay.run(link, window, (d) => this.#send(link, inflightEntry(d, 0)))) return;
      this.#replay = undefined;
    }
    while (
      window.unsent === 0 &&
      this.#queue.length > 0 &&
      !link.congested &&
      window.outstanding < link.window
    ) {
      const d = this.#queue.shift()!;
      if (d.message.expired(now)) {
        this.#storage.deleteDelivery(d); // [MQTT-3.3.2-5]
        this.broker.stats.droppedExpired++;
        continue;
      }
      this.#send(link, inflightEntry(d, 0));
    }
  }

  /**
   * Re-sends an in-flight PUBLISH with DUP set. One too large for this connection's Maximum
   * Packet Size is dropped as if delivered [MQTT-3.1.2-25]; returns false then.
   */
  #resend(link: SessionLink, entry: Inflight): boolean {
    this.#inflight.markSent(entry);
    entry.dup = true;
    if (link.sendPublish(entry.message, entry)) return true;
    this.#inflight.delete(entry.packetId);
    this.#storage.deleteDelivery(entry);
    this.broker.stats.droppedTooLarge++;
    return false;
  }

  /** PUBACK: the QoS 1 exchange is complete. 'unknown' when no message has this id. */
  acknowledge(packetId: number): AckOutcome {
    return this.#finished(this.#inflight.finish(packetId, 'puback'));
  }

  /**
   * PUBREC: 'unknown' when no message has this id, 'mismatched' when it is a QoS 1 one.
   * A failure code ends the exchange; a success moves it on to PUBREL, stored ('written')
   * when the session is persistent. A repeated PUBREC (the exchange already awaits PUBCOMP)
   * is answered like the first: PUBREL again, as mosquitto does.
   */
  received(packetId: number, reasonCode: number): AckOutcome {
    const entry = this.#inflight.get(packetId);
    if (entry === undefined) return 'unknown';
    if (entry.awaiting === 'puback') return 'mismatched';
    // [MQTT-4.3.3-4] no PUBREL after a failure PUBREC (v5)
    if (isFailureReason(reasonCode)) return this.#finished(this.#inflight.finish(packetId, entry.awaiting));
    this.#inflight.markSent(entry);
    entry.awaiting = 'pubcomp';
    return outcome(this.#storage.setDeliveryState(entry, 'released', packetId));
  }

  /**
   * PUBCOMP: the QoS 2 exchange is complete. 'unknown' when no message has this id,
   * 'mismatched' when it is a QoS 1 one or a QoS 2 one whose PUBREC has not arrived.
   */
  completed(packetId: number): AckOutcome {
    return this.#finished(this.#inflight.finish(packetId, 'pubcomp'));
  }

  /** An exchange left the window (`finish`): its stored delivery goes, the window moves on. */
  #finished(entry: Inflight | 'unknown' | 'mismatched'): AckOutcome {
    if (typeof entry === 'string') return entry;
    const wrote = this.#storage.deleteDelivery(entry);
    this.pump();
    return outcome(wrote);
  }

  // ---- connection lifecycle ----
  /** Attaches a connection: cancels expiry and any delayed will, re-sends in-flight, drains the queue. */
  attach(link: SessionLink): void {
    this.link = link;
    markAway(this, false);
    this.#clock.cancelExpiry();
    this.#clock.cancelWill(); // [MQTT-3.1.3-9] will delay: reconnected in time
    this.#storeState();
    // The new connection's window starts empty (section 4.9): PUBRELs always go out, PUBLISHes
    // only while the window has room [MQTT-3.3.4-9]; the rest wait, marked unsent, for pump().
    let sent = 0;
    for (const entry of [...this.#inflight.values()]) {
      this.#inflight.markSent(entry);
      if (entry.awaiting === 'pubcomp') {
        link.sendPubrel(entry.packetId);
        sent++;
      } else if (sent < link.window) {
        if (this.#resend(link, entry)) sent++;
      } else {
        this.#inflight.holdBack(entry);
      }
    }
    this.pump();
  }

  /** The connection has gone: start the expiry clock (the broker ends the session at 0). */
  detach(onExpire: () => void): void {
    this.link = undefined;
    markAway(this, true);
    this.#replay = undefined; // what it did not send belongs to the connection that asked
    // Queued shared messages are better served by a connected member than by waiting for us.
    if (this.#queue.length > 0) this.#handBack(this.#queue.extract(isShared), true);
    this.#clock.cancelExpiry();
    this.#clock.expireAfter(this.#expiryInterval, undefined, Date.now(), onExpire);
    this.#storeState();
  }

  /**
   * A restored session's clock: its stored deadline, or a full interval when it was connected
   * when the server stopped. False when the deadline has passed (the caller expires it).
   */
  resumeExpiry(expiresAt: number | undefined, now: number, onExpire: () => void): boolean {
    if (!this.#clock.expireAfter(this.#expiryInterval, expiresAt, now, onExpire)) return false;
    this.#storeState();
    return true;
  }

  /** Holds a will until `delaySeconds` pass (then publishes it) or the session resumes. */
  delayWill(message: Message, delaySeconds: number): void {
    this.#clock.delayWill(message, delaySeconds, () => {
      this.#storeState();
      this.broker.publish(message);
      this.broker.willChanged(this.clientId);
    });
  }

  /** Ends the session: a pending will is published now [MQTT-3.1.2-8]; state is dropped. */
  end(): void {
    this.#clock.cancelExpiry();
    const will = this.#clock.takeWill();
    if (will !== undefined) this.broker.publish(will);
    // Everything of the session leaves the store at once; later writes are not needed.
    this.#storage.deactivate();
    for (const filter of [...this.subscriptions.keys()]) this.unsubscribe(filter);
    // Shared QoS 1 messages this member never acknowledged go to another member (section 4.8.2);
    // a QoS 2 one already sent to it goes to no other client [MQTT-4.8.2-5].
    const unfinished: Delivery[] = [];
    for (const entry of this.#inflight.values()) {
      if (entry.group !== undefined && entry.awaiting === 'puback') unfinished.push(entry);
    }
    this.#inflight.clear();
    unfinished.push(...this.#queue.extract(isShared));
    this.#handBack(unfinished, false);
    this.#queue.clear();
    this.inboundQos2.clear();
  }
}

const isShared = (d: Delivery): boolean => d.group !== undefined;
