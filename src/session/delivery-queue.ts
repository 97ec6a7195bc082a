/**
 * FIFO of QoS 1/2 deliveries waiting for a connection or for room in the in-flight window.
 * Bounded by message count and bytes held (Message.heldBytes: topic, properties and payload);
 * `push` refuses (returns false) past either bound and the caller counts the drop. Array with a moving head: O(1) push and shift, compacted
 * when the dead prefix dominates.
 */

import type { QoS } from '../protocol/index.ts';
import type { Message } from '../router/index.ts';
import type { SessionGroup } from './host.ts';

export interface Delivery {
  message: Message;
  qos: QoS;
  retain: boolean;
  subscriptionIds: number[] | undefined;
  /** The shared group it was routed through, so it can go to another member (section 4.8.2). */
  group: SessionGroup | undefined;
  /** Its number in the message store (a persistent session's); 0 when not stored. */
  seq: number;
}

/** A queue's bounds: messages, and bytes held. */
export interface QueueCaps {
  readonly maxQueuedMessages: number;
  readonly maxQueuedBytes: number;
}

export class DeliveryQueue {
  #items: (Delivery | undefined)[] = [];
  #head = 0;
  #bytes = 0;
  /** The bounds, read at each push: a broker's limits (its object, changed in place) move them live. */
  readonly #caps: QueueCaps;

  constructor(caps: QueueCaps) {
    this.#caps = caps;
  }

  get maxMessages(): number {
    return this.#caps.maxQueuedMessages;
  }

  get length(): number {
    return this.#items.length - this.#head;
  }

  get bytes(): number {
    return this.#bytes;
  }

  push(d: Delivery): boolean {
    const size = d.message.heldBytes;
    if (this.length >= this.#caps.maxQueuedMessages || this.#bytes + size > this.#caps.maxQueuedBytes)
      return false;
    this.#items.push(d);
    this.#bytes += size;
    return true;
  }

  /** Appends regardless of the bounds: restored or handed-back deliveries the session already held. */
  force(d: Delivery): void {
    this.#items.push(d);
    this.#bytes += d.message.heldBytes;
  }

  *[Symbol.iterator](): Generator<Delivery> {
    for (let i = this.#head; i < this.#items.length; i++) yield this.#items[i]!;
  }

  shift(): Delivery | undefined {
    if (this.#head === this.#items.length) return undefined;
    const d = this.#items[this.#head]!;
    this.#items[this.#head++] = undefined;
    this.#bytes -= d.message.heldBytes;
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return d;
  }

  /** Removes and returns, in order, the deliveries `take` selects. */
  extract(take: (d: Delivery) => boolean): Delivery[] {
    const out: Delivery[] = [];
    const kept: Delivery[] = [];
    for (let i = this.#head; i < this.#items.length; i++) {
      const d = this.#items[i]!;
      if (take(d)) {
        out.push(d);
        this.#bytes -= d.message.heldBytes;
      } else {
        kept.push(d);
      }
    }
    if (out.length > 0) {
      this.#items = kept;
      this.#head = 0;
    }
    return out;
  }

  clear(): void {
    this.#items = [];
    this.#head = 0;
    this.#bytes = 0;
  }
}
