/**
 * Keeps a connection's PUBACK/PUBREC in the order of the PUBLISH packets they answer
 * [MQTT-4.6.0-2], [MQTT-4.6.0-3] when some answers are decided later (an on-publish hook is
 * deciding the message). An answer decided later reserves its place (`reserve`); an answer ready
 * now (`send`) goes out at once when nothing is reserved before it, else waits its turn.
 *
 * Invariant: the queue holds, from the head, the reserved or ready answers in PUBLISH order;
 * each leaves exactly once, and never before an answer ahead of it.
 */

interface Slot {
  send: (() => void) | undefined;
}

export class OrderedAcks {
  readonly #queue: Slot[] = [];

  /** Answers not yet sent (reserved or waiting behind a reserved one). */
  get waiting(): number {
    return this.#queue.length;
  }

  /** Sends now, or after the answers reserved before it. */
  send(send: () => void): void {
    if (this.#queue.length === 0) send();
    else this.#queue.push({ send });
  }

  /** Reserves a place; the returned function sends the answer when its turn comes. */
  reserve(): (send: () => void) => void {
    const slot: Slot = { send: undefined };
    this.#queue.push(slot);
    return (send) => {
      if (slot.send !== undefined) return;
      slot.send = send;
      this.#drain();
    };
  }

  #drain(): void {
    const queue = this.#queue;
    while (queue.length > 0 && queue[0]!.send !== undefined) queue.shift()!.send!();
  }
}
