/**
 * The data plane's incoming side: a batch arriving on one of this node's data subjects is
 * decoded (codec.ts) and each message delivered to its broker's sessions (BrokerLink.deliver).
 *
 * Invariants:
 * - A batch is taken once: when several of this node's subscriptions match one subject (`a/#`
 *   and `a/+`), NATS delivers it once per subscription, and every copy after the first (its
 *   batch number not above the last one seen from its sender) is dropped.
 * - What each delivery's routing said is told to the confirmations (delivery-confirms.ts), so an
 *   ask that comes after the batch waits for a fan-out split over turns.
 * - A batch that does not decode is counted and logged, never thrown into NATS's reader.
 */
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { ClusterStats } from './batch-outbox.ts';
import type { BrokerLink } from './broker-link.ts';
import { batchOrigin, decodeBatch } from './codec.ts';
import type { DeliveryConfirms } from './delivery-confirms.ts';

export class BatchInbox {
  readonly #stats: ClusterStats;
  readonly #log: Logger;
  readonly #confirms: DeliveryConfirms;
  /** The last batch number seen from each sender: a copy (overlapping subscriptions) is not above it. */
  readonly #lastSeq = new Map<number, number>();

  constructor(stats: ClusterStats, log: Logger, confirms: DeliveryConfirms) {
    this.#stats = stats;
    this.#log = log;
    this.#confirms = confirms;
  }

  /** Subscribes to `subject` for `link`'s broker. */
  subscribe(nc: NatsConnection, subject: string, link: BrokerLink): Subscription {
    return nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err !== null) return;
        const now = Date.now();
        try {
          const { sender, seq } = batchOrigin(msg.data);
          if (seq <= (this.#lastSeq.get(sender) ?? 0)) return; // a copy: another subscription matched
          this.#lastSeq.set(sender, seq);
          this.#stats.batchesReceived++;
          decodeBatch(msg.data, (m) => {
            this.#stats.received++;
            this.#confirms.routed(link.broker, link.deliver(m, now));
          });
        } catch (e) {
          this.#stats.malformed++;
          this.#log.warn({ err: (e as Error).message, subject: msg.subject }, 'cluster batch not decoded');
        }
      },
    });
  }
}
