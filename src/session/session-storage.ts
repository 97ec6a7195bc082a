/**
 * A persistent session's mirror in its broker's message store (docs/persistence.md).
 *
 * A session is written while it is persistent (Session Expiry Interval > 0, `active`): its
 * record (expiry deadline, waiting will), its subscriptions, each QoS 1/2 delivery from queued
 * through sent and PUBREC'd to gone (`seq` names it in the store), and its inbound QoS 2 ids.
 * QoS 0 deliveries never touch the store. A session that stops being persistent, or ends, is
 * removed at once, and later writes are skipped.
 *
 * Every write says whether it wrote: an acknowledgement that vouches for the change (PUBACK,
 * PUBREC, PUBREL, PUBCOMP) waits for the commit exactly when one of its writes did
 * (Connection.sendDurable). That answer is the only way a caller learns it.
 */
import type { MessageStore, OutboundState, StoredSessionState, StoredSubscription } from '../store/index.ts';
import type { Delivery } from './delivery-queue.ts';
import type { SessionParts } from './session-snapshot.ts';

export class SessionStorage {
  readonly #store: MessageStore;
  readonly #brokerId: string;
  readonly #clientId: string;
  #active = false;

  constructor(store: MessageStore, brokerId: string, clientId: string) {
    this.#store = store;
    this.#brokerId = brokerId;
    this.#clientId = clientId;
  }

  /** True while the session is written to the store. */
  get active(): boolean {
    return this.#active;
  }

  /** The session is persistent from now on; the caller writes its whole state next. */
  activate(): void {
    this.#active = true;
  }

  /**
   * Removes everything of the session from the store at once; later writes are skipped.
   * `handedOver`: the session lives on at another node, so a journal beyond this node keeps it
   * (`MessageStore.forget`).
   */
  deactivate(handedOver = false): boolean {
    if (!this.#active) return false;
    this.#active = false;
    if (handedOver && this.#store.forget !== undefined) this.#store.forget(this.#brokerId, this.#clientId);
    else this.#store.deleteSession(this.#brokerId, this.#clientId);
    return true;
  }

  /** The session has just become persistent: active from now on, and all of it written. */
  writeAll(parts: SessionParts): void {
    this.activate();
    this.writeState(parts);
    for (const sub of parts.subscriptions) this.putSubscription(sub);
    for (const entry of parts.inflight)
      this.putDelivery(entry, entry.awaiting === 'pubcomp' ? 'released' : 'sent', entry.packetId);
    for (const d of parts.queue) this.putDelivery(d, 'queued', 0);
    for (const packetId of parts.inboundQos2) this.addInboundQos2(packetId);
  }

  /** The session's own record (expiry deadline, waiting will), while active. */
  writeState(parts: SessionParts): boolean {
    const will = parts.will;
    return this.putState({
      clientId: parts.clientId,
      expiryInterval: parts.expiryInterval,
      expiresAt: parts.expiresAt,
      will: will === undefined ? undefined : { message: will.message, publishAt: will.publishAt },
    });
  }

  putState(state: StoredSessionState): boolean {
    if (!this.#active) return false;
    this.#store.putSession(this.#brokerId, state);
    return true;
  }

  putSubscription(sub: StoredSubscription): boolean {
    if (!this.#active) return false;
    this.#store.putSubscription(this.#brokerId, this.#clientId, sub);
    return true;
  }

  deleteSubscription(topicFilter: string): boolean {
    if (!this.#active) return false;
    this.#store.deleteSubscription(this.#brokerId, this.#clientId, topicFilter);
    return true;
  }

  /** Writes a QoS 1/2 delivery under a new `seq`, which it gives the delivery. */
  putDelivery(d: Delivery, state: OutboundState, packetId: number): boolean {
    if (!this.#active) return false;
    d.seq = this.#store.nextSeq();
    this.#store.putOutbound(this.#brokerId, this.#clientId, {
      seq: d.seq,
      state,
      packetId,
      qos: d.qos as 1 | 2,
      retain: d.retain,
      subscriptionIds: d.subscriptionIds,
      message: d.message,
    });
    return true;
  }

  /** A stored delivery moved on: sent with `packetId`, or PUBREC'd ('released'). */
  setDeliveryState(d: Delivery, state: OutboundState, packetId: number): boolean {
    if (!this.#active || d.seq === 0) return false;
    this.#store.setOutboundState(this.#brokerId, this.#clientId, d.seq, state, packetId);
    return true;
  }

  /** The delivery is gone (completed, expired, dropped, handed to another member). */
  deleteDelivery(d: Delivery): boolean {
    if (d.seq === 0) return false;
    const seq = d.seq;
    d.seq = 0;
    if (!this.#active) return false;
    this.#store.deleteOutbound(this.#brokerId, this.#clientId, seq);
    return true;
  }

  addInboundQos2(packetId: number): boolean {
    if (!this.#active) return false;
    this.#store.addInboundQos2(this.#brokerId, this.#clientId, packetId);
    return true;
  }

  deleteInboundQos2(packetId: number): boolean {
    if (!this.#active) return false;
    this.#store.deleteInboundQos2(this.#brokerId, this.#clientId, packetId);
    return true;
  }
}
