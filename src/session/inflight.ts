/**
 * The outbound in-flight window of one session: its QoS 1/2 PUBLISHes sent and not yet
 * completed, by packet id, in the order they were sent (Map order), and the allocation of
 * their packet ids.
 *
 * Invariants:
 * - Packet ids in the window are unique and non-zero [MQTT-2.2.1-3]; allocation goes round
 *   1..65535 and skips ids still held.
 * - `unsent` counts the entries held back at resume (the new connection's window was full):
 *   they hold a packet id but no window slot, so `outstanding` (what the client's Receive
 *   Maximum limits [MQTT-3.3.4-9]) leaves them out.
 * - An entry is its own `PublishOptions`: it is what the connection encodes (DUP set from its
 *   first re-send on), so sending it allocates nothing.
 */
import type { Delivery } from './delivery-queue.ts';

export interface Inflight extends Delivery {
  packetId: number;
  /** Set once the PUBLISH is re-sent [MQTT-4.4.0-1]. */
  dup: boolean;
  /** 'puback' / 'pubrec' await those; 'pubcomp' means PUBREL was sent. */
  awaiting: 'puback' | 'pubrec' | 'pubcomp';
  /** Not yet re-sent on the current connection: the window was full when it resumed. */
  unsent: boolean;
}

/** The in-flight entry of a delivery; one object shape for all (adding fields to a Delivery would change its shape). */
export function inflightEntry(
  d: Delivery,
  packetId: number,
  awaiting: Inflight['awaiting'] = d.qos === 1 ? 'puback' : 'pubrec',
): Inflight {
  const entry = newInflight(d.message, d.qos, d.retain, d.subscriptionIds, d.group);
  entry.packetId = packetId;
  entry.seq = d.seq;
  entry.awaiting = awaiting;
  return entry;
}

/** A new delivery's in-flight entry, made in its final shape (no Delivery first): no packet id yet, not stored (seq 0). */
export function newInflight(
  message: Delivery['message'],
  qos: Delivery['qos'],
  retain: boolean,
  subscriptionIds: number[] | undefined,
  group: Delivery['group'],
): Inflight {
  const awaiting = qos === 1 ? 'puback' : 'pubrec';
  return {
    message,
    qos,
    retain,
    subscriptionIds,
    group,
    seq: 0,
    packetId: 0,
    dup: false,
    awaiting,
    unsent: false,
  };
}

/**
 * The entries of every window that has held none yet: an empty Map costs ~230 bytes, and most
 * connections of a large fleet never receive a QoS 1 or 2 message. Only `add` writes, and it
 * gives the window its own Map first; every other use of this one (get, has, delete, clear,
 * values) leaves an empty Map empty.
 */
const NO_ENTRIES: Map<number, Inflight> = new Map();

export class InflightWindow {
  #entries = NO_ENTRIES;
  #unsent = 0;
  #nextPacketId = 1;

  get size(): number {
    return this.#entries.size;
  }

  /** Entries marked `unsent`. */
  get unsent(): number {
    return this.#unsent;
  }

  /** Unacknowledged PUBLISHes sent on the current connection: what the window limits. */
  get outstanding(): number {
    return this.#entries.size - this.#unsent;
  }

  get(packetId: number): Inflight | undefined {
    return this.#entries.get(packetId);
  }

  values(): IterableIterator<Inflight> {
    return this.#entries.values();
  }

  /** The next packet id not held by an entry. */
  allocatePacketId(): number {
    let id = this.#nextPacketId;
    while (this.#entries.has(id)) id = id === 0xffff ? 1 : id + 1;
    this.#nextPacketId = id === 0xffff ? 1 : id + 1;
    return id;
  }

  add(entry: Inflight): void {
    if (this.#entries === NO_ENTRIES) this.#entries = new Map();
    this.#entries.set(entry.packetId, entry);
  }

  delete(packetId: number): void {
    this.#entries.delete(packetId);
  }

  /**
   * The acknowledgement `awaiting` arrived for `packetId`: its entry leaves the window and is
   * returned; 'unknown' when no entry has that id, 'mismatched' when it awaits another one.
   */
  finish(packetId: number, awaiting: Inflight['awaiting']): Inflight | 'unknown' | 'mismatched' {
    const entry = this.#entries.get(packetId);
    if (entry === undefined) return 'unknown';
    if (entry.awaiting !== awaiting) return 'mismatched';
    this.markSent(entry); // an early PUBACK for a message not yet re-sent completes it too
    this.#entries.delete(packetId);
    return entry;
  }

  /** The entry is sent (or completed) on this connection: it takes a window slot again. */
  markSent(entry: Inflight): void {
    if (entry.unsent) this.#unsent--;
    entry.unsent = false;
  }

  /** Holds an entry back until the window has room (at resume). */
  holdBack(entry: Inflight): void {
    if (!entry.unsent) this.#unsent++;
    entry.unsent = true;
  }

  clear(): void {
    this.#entries.clear();
    this.#unsent = 0;
  }
}
