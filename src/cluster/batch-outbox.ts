/**
 * The data plane's outgoing batches (codec.ts): every message some other node wants is
 * appended to the batch of its subject, and the batches go out together when the cluster
 * flushes at the end of the event-loop turn, many messages per NATS message; a batch past
 * `MAX_BATCH` bytes goes at once, so the next node starts on it while this one still reads.
 *
 * Invariants:
 * - Per subject the order of appends is the order on the wire: one batch per subject at a
 *   time, sent whole, on the one NATS connection (so per publisher and topic order holds).
 * - No batch outgrows the NATS server's max_payload: a message that does not fit beside the
 *   ones before it starts the next batch; one larger on its own is dropped and counted.
 * - While the link is down nothing is queued: each message is dropped and counted
 *   (`stats.dropped`), QoS 1/2 included (core NATS is at most once; `add` says so, and their
 *   acknowledgements say they failed: delivery-confirms.ts).
 * - Every batch carries this process's sender number and the next batch number (the receiver
 *   drops copies it already had, codec.ts); every message its serial, in the order appended.
 */
import type { Logger } from 'pino';
import type { Message } from '../router/index.ts';
import { BatchWriter } from './codec.ts';
import type { NatsLink } from './link.ts';

/**
 * A batch past this many bytes is sent at once instead of at the end of the turn. A turn that
 * reads many publishers can append a few hundred KB: sent only at its end, nats-server and the
 * receiving node wait for the whole turn's parsing, then work while this node waits for its
 * publishers. Sent every 32 KB, the nodes work on one turn's messages side by side: cross-node
 * fan-in went from 0.44-0.47x one node (256 KB) to 0.50-0.55x; below 16 KB the cost per NATS
 * message wins (docs/performance.md, Cluster).
 */
export const MAX_BATCH = 32 * 1024;

/** Cross-node message counters (metrics: pubsub_cluster_messages_*_total). */
export interface ClusterStats {
  sent: number;
  received: number;
  /** Messages another node wanted that did not go: link down, too large, or refused by NATS. */
  dropped: number;
  batchesSent: number;
  batchesReceived: number;
  /** Batches received that could not be decoded (logged). */
  malformed: number;
}

/** Counters at zero (a node's at start). */
export function zeroStats(): ClusterStats {
  return { sent: 0, received: 0, dropped: 0, batchesSent: 0, batchesReceived: 0, malformed: 0 };
}

export class BatchOutbox {
  readonly #sender: number;
  readonly #link: NatsLink;
  readonly #stats: ClusterStats;
  readonly #log: Logger;
  #pending = new Map<string, BatchWriter>();
  #seq = 0;
  /** Messages stamped so far (the last one's serial). */
  #serial = 0;
  /** The NATS server's max_payload (its INFO, set at every link up): no batch is made larger. */
  maxPayload = 1024 * 1024;

  constructor(sender: number, link: NatsLink, stats: ClusterStats, log: Logger) {
    this.#sender = sender;
    this.#link = link;
    this.#stats = stats;
    this.#log = log;
  }

  /**
   * Appends `message` to its subject's batch (dropped and counted while the link is down),
   * stamped with its identity: this node's sender number and the next serial (codec.ts).
   * False when it cannot go now (the link is down).
   */
  add(subject: string, message: Message): boolean {
    if (!this.#link.up) {
      this.#stats.dropped++;
      return false;
    }
    if (message.origin !== this.#sender) {
      // Once per node: a message sent twice from here (to a plain subject and to a shared
      // group) keeps one identity; one from another node sent on gets this node's (the batch
      // header names this node as the sender of all its messages).
      message.origin = this.#sender;
      message.serial = ++this.#serial;
    }
    let batch = this.#pending.get(subject);
    if (batch === undefined) {
      batch = new BatchWriter(this.#sender, message.topic, message.payload.length);
      this.#pending.set(subject, batch);
    }
    let length = batch.length;
    const count = batch.count;
    batch.append(message);
    if (count > 0 && batch.length > this.maxPayload) {
      // It does not fit beside the ones before it: they go now, and it starts the next batch.
      batch.rewind(length, count);
      this.#send(subject, batch);
      batch = new BatchWriter(this.#sender, message.topic, message.payload.length);
      this.#pending.set(subject, batch);
      length = batch.length;
      batch.append(message);
    }
    if (batch.length > this.maxPayload) {
      // Too large even on its own: it cannot cross (it is still delivered on this node).
      batch.rewind(length, 0);
      this.#stats.dropped++;
      return true; // not a failure to wait for: it never crosses (docs/cluster.md, Limits)
    }
    if (batch.length >= MAX_BATCH) {
      this.#pending.delete(subject);
      this.#send(subject, batch);
    }
    return true;
  }

  /** Sends every batch appended to since the last flush. */
  flush(): void {
    if (this.#pending.size === 0) return;
    const pending = this.#pending;
    this.#pending = new Map();
    for (const [subject, batch] of pending) if (batch.count > 0) this.#send(subject, batch);
  }

  #send(subject: string, batch: BatchWriter): void {
    const nc = this.#link.connection;
    if (nc === undefined) {
      this.#stats.dropped += batch.count;
      return;
    }
    try {
      nc.publish(subject, batch.bytes(++this.#seq));
      this.#stats.sent += batch.count;
      this.#stats.batchesSent++;
    } catch (err) {
      this.#stats.dropped += batch.count;
      this.#log.warn(
        { err: (err as Error).message, subject, messages: batch.count },
        'cluster batch not sent',
      );
    }
  }
}
