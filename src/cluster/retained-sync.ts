/**
 * Retained messages cluster-wide (issue 18): one JetStream stream is the truth, each node's
 * retained store (and its SQLite copy) a cache of it.
 *
 * - The stream `PUBSUB_RETAINED` holds subjects `pubsub.r.<broker>.<topic levels>` (escaped as
 *   the data plane's, subjects.ts; a topic whose subject would pass `MAX_SUBJECT` characters is
 *   named by its SHA-256 instead, `pubsub.r.<broker>.~h.<hex>`, which no escaped level can be)
 *   with one message per subject: a retained message (codec.ts, one message per batch) or, for
 *   a clear, the same with an empty payload (a tombstone, kept so that every node, a late one
 *   included, learns of the clear).
 * - A retained PUBLISH (or an admin delete) on a node changes its cache at once, as on one node
 *   (its limits judged against the cache, which holds the whole cluster's messages), and goes
 *   to the stream through an outbox holding the latest write per subject until the stream
 *   acknowledges it: while the link is down the outbox keeps it and it is sent when the link
 *   returns (a message id per write lets JetStream drop a retried copy). The PUBACK/PUBREC of a
 *   retained PUBLISH waits until the stream took it (`tickets`, one of the message store's
 *   gates): it says 0x80 when the node is fenced (session-fence.ts) or the stream did not take
 *   it within 10 s, though the write stays in the outbox and is sent later.
 * - Every node reads the stream from its start with one ordered consumer and applies each
 *   message to its cache in stream order, its own writes included: the last write by stream
 *   sequence is what every node ends with, the same everywhere, whatever a node did locally in
 *   between. A node's own write coming back while its cache still holds that very message is
 *   not applied again (no second store write, and a retained replay under way still knows the
 *   message as the one a live delivery superseded). The consumer resumes after the last sequence applied (it is stopped when the link
 *   goes down and made again when it is back), so no sequence is applied twice or skipped.
 * - A message for a broker not open on this node is kept (latest per subject, as received)
 *   and applied when the broker opens here.
 * - `loaded` is false until the first read reaches the stream's end (/readyz waits for it), so
 *   a node that joins later serves every retained message before it takes clients.
 * - A read of the whole stream (at start, or of a stream made again) ends by writing to the
 *   stream every message of this node's cache whose subject the stream does not hold: one this
 *   node acknowledged while its link was down and that it could not send before it stopped, or
 *   every one if NATS lost its store (a clear leaves a tombstone, so a topic cleared elsewhere
 *   is never written back).
 * - An expired message is never applied (the topic's older message is removed instead)
 *   [MQTT-3.3.2-5]; expiry travels as an instant, so it holds on every node.
 * - Loaded only in cluster mode, with the rest of src/cluster; without JetStream on the NATS
 *   server retained messages stay per node (said once).
 */
import { createHash, randomUUID } from 'node:crypto';
import {
  type ConsumerMessages,
  DeliverPolicy,
  type JetStreamClient,
  type JsMsg,
  jetstream,
  jetstreamManager,
} from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { Broker } from '../broker/index.ts';
import { Message } from '../router/index.ts';
import { BatchWriter, decodeBatch } from './codec.ts';
import { escapeLevel, ROOT, topicSubject } from './subjects.ts';
import { WriteTickets } from './write-tickets.ts';

/** The stream's name and subjects. */
export const RETAINED_STREAM = 'PUBSUB_RETAINED';
const SUBJECTS = `${ROOT}.r.>`;
/** Longer subjects are hashed: NATS's control line (subject included) is 4 KiB by default. */
const MAX_SUBJECT = 2048;
const RETRY_MS = 1000;
const EMPTY = Buffer.alloc(0);

/** The subject of a broker's retained message on `topic`. */
export function retainedSubject(address: string, topic: string): string {
  const prefix = `${ROOT}.r.${escapeLevel(address)}`;
  const subject = topicSubject(prefix, topic);
  if (subject.length <= MAX_SUBJECT) return subject;
  return `${prefix}.~h.${createHash('sha256').update(topic).digest('hex')}`;
}

/** The broker token of a retained subject (`pubsub.r.<token>.…`). */
function brokerToken(subject: string): string {
  const start = ROOT.length + 3;
  return subject.slice(start, subject.indexOf('.', start));
}

interface Write {
  readonly data: Uint8Array;
  readonly id: string;
  /** The acknowledgement tickets it settles: its own and those of the writes it replaced. */
  readonly tickets: number[];
}

/** How long an acknowledgement waits for the stream to take a retained write. */
const WRITE_TIMEOUT_MS = 10_000;
const NOT_TAKEN = new Error('the cluster retained stream did not take the retained message');

/** A write of this node as its cache holds it (`message` undefined: cleared). */
interface Echo {
  readonly id: string;
  readonly topic: string;
  readonly message: Message | undefined;
}

/** Counters (metrics: pubsub_cluster_retained_*_total). */
export interface RetainedSyncStats {
  /** Writes the stream acknowledged. */
  written: number;
  /** Stream messages applied to this node's cache (its own writes included). */
  applied: number;
  /** Writes given up: larger than NATS takes, or refused by the stream (logged). */
  failed: number;
}

export class RetainedSync {
  readonly stats: RetainedSyncStats = { written: 0, applied: 0, failed: 0 };
  readonly #log: Logger;
  readonly #sender: number;
  /** Brokers open on this node, by their token on the bus. */
  readonly #brokers = new Map<string, Broker>();
  /** The latest stream message per subject of brokers not open here, by broker token. */
  readonly #orphans = new Map<string, Map<string, Uint8Array>>();
  /** Writes the stream has not acknowledged yet, the latest per subject. */
  readonly #outbox = new Map<string, Write>();
  /** This node's latest write per subject not yet read back: its id and what the cache got. */
  readonly #echoes = new Map<string, Echo>();
  #js: JetStreamClient | undefined;
  #messages: ConsumerMessages | undefined;
  /** Bumped at every link change: an async step of an older link gives up. */
  #generation = 0;
  /** The last stream sequence applied, and the creation instant of the stream it counts in. */
  #applied = 0;
  #acknowledged = 0;
  #streamCreated = '';
  #loaded = false;
  /** The subjects met by a read from the stream's start, until it reaches the end. */
  #seen: Set<string> | undefined;
  #unavailableSaid = false;
  #retry: NodeJS.Timeout | undefined;

  readonly #replicas: () => number;
  /** What acknowledgements of retained PUBLISHes wait for: the stream holding them (the store's gate). */
  readonly tickets: WriteTickets;
  readonly #expiry: NodeJS.Timeout;
  #fenced = false;
  /** The last `up` found no stream (JetStream off, or not answering): acknowledgements do not wait. */
  #noStream = false;

  /** `replicas`: of the stream when this node creates it (`--cluster-replicas`). */
  constructor(logger: Logger, sender: number, replicas: () => number = () => 1) {
    this.#log = logger;
    this.#sender = sender;
    this.#replicas = replicas;
    this.tickets = new WriteTickets(WRITE_TIMEOUT_MS, (err) =>
      logger.error({ err }, 'a retained write callback threw'),
    );
    this.#expiry = setInterval(() => this.tickets.expire(Date.now(), NOT_TAKEN), 1000);
    this.#expiry.unref();
  }

  /** True once this node's cache has caught up with the stream (or JetStream is not there). */
  get loaded(): boolean {
    return this.#loaded;
  }

  /** Writes waiting for the stream. */
  get pending(): number {
    return this.#outbox.size;
  }

  /** The last stream sequence applied to this node's cache. */
  get sequence(): number {
    return this.#applied;
  }

  /** The highest stream sequence of this node's writes the stream acknowledged. */
  get acknowledged(): number {
    return this.#acknowledged;
  }

  opened(broker: Broker): void {
    const token = escapeLevel(broker.address);
    this.#brokers.set(token, broker);
    const orphans = this.#orphans.get(token);
    if (orphans === undefined) return;
    this.#orphans.delete(token);
    for (const data of orphans.values()) this.#applyTo(broker, data);
  }

  closed(broker: Broker): void {
    const token = escapeLevel(broker.address);
    if (this.#brokers.get(token) === broker) this.#brokers.delete(token);
  }

  /**
   * A broker deleted through this node's API: its retained messages leave the stream (each node
   * drops its own copy with the broker), so a broker made again at that address starts with
   * none. Done by the one node whose API deleted it; with the link down it is not done (logged,
   * docs/cluster.md).
   */
  purge(address: string): void {
    const token = escapeLevel(address);
    const prefix = `${ROOT}.r.${token}.`;
    for (const [subject, write] of [...this.#outbox])
      if (subject.startsWith(prefix)) {
        this.#outbox.delete(subject);
        this.tickets.settle(write.tickets);
      }
    for (const subject of [...this.#echoes.keys()])
      if (subject.startsWith(prefix)) this.#echoes.delete(subject);
    this.#orphans.delete(token);
    const js = this.#js;
    const failed = (err: Error) =>
      this.#log.warn(
        { event: 'cluster_retained_purge_failed', broker: address, err: err.message },
        `the retained messages of deleted broker ${address} stay in the stream`,
      );
    if (js === undefined) return failed(new Error('NATS link down'));
    js.jetstreamManager(false)
      .then((jsm) => jsm.streams.purge(RETAINED_STREAM, { filter: `${prefix}>` }))
      .catch(failed);
  }

  /** A retained message set (`message`) or cleared (undefined) on this node: to the stream. */
  write(address: string, topic: string, message: Message | undefined): void {
    const m = message ?? new Message({ topic, payload: EMPTY, qos: 0, retain: true });
    const batch = new BatchWriter(this.#sender, topic, m.payload.length);
    batch.append(m);
    const subject = retainedSubject(address, topic);
    // No stream to wait for (JetStream not on the servers): durable on this node only, at once.
    const replaced = this.#outbox.get(subject)?.tickets ?? [];
    const write: Write = {
      data: batch.bytes(0),
      id: randomUUID(),
      tickets: this.#noStream ? replaced : [...replaced, this.tickets.take()],
    };
    this.#echoes.set(subject, { id: write.id, topic, message });
    this.#outbox.delete(subject); // re-inserted last: the outbox is sent in write order
    this.#outbox.set(subject, write);
    // Fenced: its acknowledgement (asked after this call, in this turn) is told it failed.
    if (this.#fenced) setImmediate(() => this.tickets.settle(write.tickets, NOT_TAKEN));
    this.#send(subject, write);
  }

  /** The link is up (again): make sure of the stream, send the outbox, read on. */
  async up(nc: NatsConnection): Promise<void> {
    const generation = ++this.#generation;
    clearTimeout(this.#retry);
    try {
      const jsm = await jetstreamManager(nc, { checkAPI: false });
      const info = await jsm.streams.info(RETAINED_STREAM).catch(() =>
        jsm.streams.add({
          name: RETAINED_STREAM,
          subjects: [SUBJECTS],
          max_msgs_per_subject: 1,
          num_replicas: this.#replicas(),
        }),
      );
      if (generation !== this.#generation) return;
      // A stream made again (NATS lost its store) counts from 1: read it all.
      if (info.created !== this.#streamCreated) this.#applied = this.#acknowledged = 0;
      this.#streamCreated = info.created;
      if (this.#applied === 0) this.#seen = new Set();
      const last = info.state;
      this.#js = jetstream(nc);
      this.#noStream = false;
      for (const [subject, write] of this.#outbox) this.#send(subject, write);
      if (last.messages === 0 || last.last_seq <= this.#applied) this.#caughtUp();
      const consumer = await this.#js.consumers.get(RETAINED_STREAM, {
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: this.#applied + 1,
      });
      if (generation !== this.#generation) return;
      this.#messages = await consumer.consume({ callback: (m) => this.#received(m) });
      if (generation !== this.#generation) this.#stopReading();
    } catch (err) {
      if (generation !== this.#generation) return;
      if (!this.#unavailableSaid)
        this.#log.warn(
          { event: 'cluster_retained_unavailable', err: (err as Error).message },
          'retained messages stay per node: JetStream is not available on the NATS servers (start them with -js); retrying at the next reconnection',
        );
      this.#unavailableSaid = true;
      this.#noStream = true;
      this.#seen = undefined;
      // No stream: the retained messages are durable on this node only, as documented.
      for (const write of this.#outbox.values()) this.tickets.settle(write.tickets);
      this.#caughtUp(); // nothing to wait for: the node serves its own retained messages
    }
  }

  /** The link is down: stop reading (resumed after the last sequence applied) and sending. */
  down(): void {
    this.#generation++;
    this.#js = undefined;
    clearTimeout(this.#retry);
    this.#stopReading();
  }

  /**
   * The node is fenced (cut off from NATS for 3 s, session-fence.ts): the acknowledgements
   * waiting for the stream are told it did not take their writes (0x80), and so are those of
   * later writes while it lasts; the writes stay in the outbox, sent when the link is back.
   */
  fenced(up: boolean): void {
    this.#fenced = up;
    if (up) this.#failWaiting();
  }

  #failWaiting(): void {
    for (const write of this.#outbox.values()) this.tickets.settle(write.tickets, NOT_TAKEN);
  }

  close(): void {
    clearInterval(this.#expiry);
    this.down();
  }

  #stopReading(): void {
    const messages = this.#messages;
    this.#messages = undefined;
    void messages?.close().catch(() => undefined);
  }

  #send(subject: string, write: Write): void {
    const js = this.#js;
    if (js === undefined) return; // kept: sent when the link is back
    js.publish(subject, write.data, { msgID: write.id }).then(
      (ack) => {
        this.#acknowledged = Math.max(this.#acknowledged, ack.seq);
        if (this.#outbox.get(subject) === write) this.#outbox.delete(subject);
        this.tickets.settle(write.tickets);
        this.stats.written++;
      },
      (err: Error) => {
        if (this.#outbox.get(subject) !== write) return; // a later write replaced it
        if (/payload|message size|exceed/i.test(err.message)) {
          this.#outbox.delete(subject);
          this.#echoes.delete(subject);
          this.tickets.settle(write.tickets); // on this node only: acknowledged as before
          this.stats.failed++;
          this.#log.warn(
            { event: 'cluster_retained_not_shared', subject: subject.slice(0, 128), err: err.message },
            'retained message kept on this node only: the stream refused it',
          );
          return;
        }
        if (this.#js !== js) return; // the link went down: `up` sends it again
        clearTimeout(this.#retry);
        this.#retry = setTimeout(() => {
          for (const [s, w] of this.#outbox) this.#send(s, w);
        }, RETRY_MS);
        this.#retry.unref();
      },
    );
  }

  #received(m: JsMsg): void {
    if (m.seq <= this.#applied) return;
    this.#applied = m.seq;
    this.#seen?.add(m.subject);
    const token = brokerToken(m.subject);
    const broker = this.#brokers.get(token);
    const echo = this.#echoes.get(m.subject);
    if (echo !== undefined && echo.id === m.headers?.get('Nats-Msg-Id')) {
      this.#echoes.delete(m.subject);
      if (broker !== undefined && broker.retained.get(echo.topic) === echo.message) {
        this.stats.applied++;
        if (m.info.pending === 0) this.#caughtUp();
        return;
      }
    }
    try {
      if (broker !== undefined) this.#applyTo(broker, m.data);
      else {
        let orphans = this.#orphans.get(token);
        if (orphans === undefined) this.#orphans.set(token, (orphans = new Map()));
        orphans.set(m.subject, Uint8Array.from(m.data));
      }
    } catch (err) {
      this.#log.warn(
        { err: (err as Error).message, subject: m.subject.slice(0, 128) },
        'retained stream message not decoded',
      );
    }
    if (m.info.pending === 0) this.#caughtUp();
  }

  /** One stream message into a broker's cache: stored, or (empty, expired) its topic cleared. */
  #applyTo(broker: Broker, data: Uint8Array): void {
    if (broker.closed) return;
    const now = Date.now();
    decodeBatch(data, (message) => {
      this.stats.applied++;
      if (message.payload.length > 0 && !message.expired(now)) {
        broker.retained.apply(message);
        broker.store.putRetained(broker.id, message);
      } else if (broker.retained.delete(message.topic)) broker.store.deleteRetained(broker.id, message.topic);
    });
  }

  /** After a whole read: what this node holds and the stream does not goes to it (header). */
  #writeBack(seen: Set<string>): void {
    let written = 0;
    const now = Date.now();
    for (const broker of this.#brokers.values()) {
      if (broker.closed) continue;
      for (const message of broker.retained.every()) {
        if (message.expired(now)) continue;
        const subject = retainedSubject(broker.address, message.topic);
        if (seen.has(subject) || this.#outbox.has(subject)) continue;
        this.write(broker.address, message.topic, message);
        written++;
      }
    }
    if (written > 0)
      this.#log.info(
        { event: 'cluster_retained_written_back', messages: written },
        'retained messages held here and not in the cluster stream written to it',
      );
  }

  #caughtUp(): void {
    if (this.#seen !== undefined) this.#writeBack(this.#seen);
    this.#seen = undefined;
    if (this.#loaded) return;
    this.#loaded = true;
    this.#log.info(
      { event: 'cluster_retained_loaded', sequence: this.#applied },
      'retained messages loaded from the cluster',
    );
  }
}
