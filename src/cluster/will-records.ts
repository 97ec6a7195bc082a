/**
 * Wills of a node that dies are published by a surviving node (issue 19), after their delay.
 *
 * - Records: every will a node holds (a connected client's, or one waiting for its Will Delay
 *   Interval in a session) is kept in the JetStream KV bucket `pubsub-wills` (history 1,
 *   `--cluster-replicas`), one key per broker and client id, `{node, address, clientId, message,
 *   delaySeconds, publishAt}`. A node writes the record when a client's will changes on it
 *   (`changed`, at most once per client per event-loop turn) and deletes the record it wrote,
 *   as a compare-and-set on the revision it wrote, when it holds no will for that client any
 *   more (published, discarded by a normal DISCONNECT, cancelled by a resume, handed over with
 *   its session: the new node writes its own). A clean stop deletes every record of the node
 *   first, as one node publishes no will at shutdown.
 * - A node forgotten by the membership (silent for `PEER_TIMEOUT_MS`, peers.ts) leaves its
 *   records behind: every surviving node reads them and arms each will for its delay, counted
 *   from then (a waiting one: at its due instant, or at once if past). When one fires, the
 *   survivor deletes the record as a compare-and-set on the revision it read: the one whose
 *   delete succeeds publishes the will, so it is published once, by one node.
 * - Its client connecting again anywhere (a claim of that client id, cluster.ts; also one seen in
 *   the `RECENT_MS` before the node was forgotten) settles a will that was still waiting for its
 *   delay as on one node restarted from its disk: asking to resume (Clean Start 0) within the
 *   delay cancels it [MQTT-3.1.3-9] (the session could not be resumed, its node being gone, but
 *   the client is back), a clean start ends the old session and so publishes it now
 *   [MQTT-3.1.2-8] (through the same compare-and-set). A will without a delay is published
 *   whatever the client did since: it was due when the connection died.
 *
 * Bound: a will of a node that died is published within `PEER_TIMEOUT_MS` (6 s) plus its delay
 * after the node stopped answering. Not covered: a node cut off from NATS but alive still
 * publishes its clients' wills itself when they disconnect, and the others publish them too
 * once they forget it (docs/cluster.md).
 */
import { createHash } from 'node:crypto';
import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { Broker } from '../broker/index.ts';
import { Message } from '../router/index.ts';
import type { StoredMessage } from '../store/index.ts';
import { fromBufferJson, toBufferJson } from './buffer-json.ts';
import { openBucket } from './kv-bucket.ts';

export const WILLS_BUCKET = 'pubsub-wills';

/** Claims are remembered this long: a node is forgotten 6 s after it last spoke (peers.ts). */
const RECENT_MS = 15_000;

/** Will-record counters (metrics: pubsub_cluster_wills_*_total). */
export interface WillStats {
  /** Records written (put) by this node. */
  written: number;
  /** Wills of nodes that died that this node published. */
  published: number;
  /** Such wills cancelled because their client connected again. */
  cancelled: number;
  /** Writes or deletes the bucket did not take (logged). */
  failed: number;
}

interface WillRecord {
  readonly node: string;
  /** The node's process that wrote it (a restarted node tells its earlier records apart). */
  readonly incarnation: string;
  readonly address: string;
  readonly clientId: string;
  readonly message: StoredMessage;
  readonly delaySeconds: number;
  readonly publishAt: number | undefined;
}

export interface WillHost {
  readonly nodeName: string;
  readonly logger: Logger;
  readonly replicas: () => number;
  /** This process among the node's restarts (its records carry it). */
  readonly incarnation: string;
  /** This node's broker at `address`, if it serves it. */
  broker(address: string): Broker | undefined;
  /** Every broker this node serves. */
  brokers(): Iterable<Broker>;
}

/**
 * Whether a claim (the client connected again) settles a gone node's will now: a clean start
 * does (published now); Clean Start 0 cancels a will still within its delay at that time.
 */
function settledBy(record: WillRecord, claim: { at: number; clean: boolean }): boolean {
  if (claim.clean) return true;
  return record.publishAt !== undefined ? claim.at < record.publishAt : record.delaySeconds > 0;
}

/** A client in this module's maps. */
const clientOf = (address: string, clientId: string): string => `${address}\0${clientId}`;

/** The record's key: KV keys allow few characters, client ids any (hashed only to touch the bucket). */
const keyOf = (address: string, clientId: string): string =>
  createHash('sha256').update(address).update('\0').update(clientId).digest('base64url');

export class WillRecords {
  readonly #host: WillHost;
  readonly stats: WillStats = { written: 0, published: 0, cancelled: 0, failed: 0 };
  #kv: KV | undefined;
  /** Records this node wrote, by `address \0 client id`: their KV key and revision. */
  readonly #mine = new Map<string, { key: string; revision: number }>();
  /** Clients whose will changed this turn, by `address \0 client id`: [address, client id]. */
  #dirty = new Map<string, [string, string]>();
  /** Wills of dead nodes armed here, by `address \0 client id`: the KV key, timer and revision. */
  readonly #armed = new Map<
    string,
    { key: string; timer: NodeJS.Timeout; revision: number; record: WillRecord }
  >();
  /** Clients that connected lately (claims), by `address \0 client id`: when, where, clean start. */
  readonly #recent = new Map<string, { at: number; node: string; clean: boolean }>();
  /** Per client, the last of its record operations (`#inOrder`). */
  readonly #ops = new Map<string, Promise<void>>();
  #chain: Promise<unknown> = Promise.resolve();

  constructor(host: WillHost) {
    this.#host = host;
  }

  /** At every link up: the bucket (made if missing), then what changed while it was down. */
  async linkUp(nc: NatsConnection): Promise<void> {
    try {
      this.#kv = await openBucket(nc, WILLS_BUCKET, this.#host.replicas());
    } catch (err) {
      this.#host.logger.warn({ err: (err as Error).message }, 'cluster: the wills bucket is not available');
      return;
    }
    // Every will this process holds, written afresh: the others may have taken this node for
    // gone while its link was down, and settled its records.
    for (const broker of this.#host.brokers())
      for (const clientId of broker.sessions.keys())
        if (broker.heldWill(clientId) !== undefined) this.changed(broker.address, clientId);
    this.#flush();
    // Then what an earlier process of this node left: the wills of connections that died with it.
    await Promise.all(this.#ops.values());
    const self = this.#host.nodeName;
    this.#takeOver(
      (r) => r.node === self && r.incarnation !== this.#host.incarnation && r.publishAt === undefined,
      `${self} (an earlier process)`,
    );
  }

  /** The will held here for a client of broker `address` may have changed (Broker.willChanged). */
  changed(address: string, clientId: string): void {
    const wasEmpty = this.#dirty.size === 0;
    this.#dirty.set(clientOf(address, clientId), [address, clientId]);
    if (wasEmpty) setImmediate(() => this.#flush());
  }

  /**
   * A client of broker `address` connected on `node` (`clean`: with a clean start): a will armed
   * for it here is cancelled, or published now after a clean start (see the header).
   */
  connected(address: string, clientId: string, node: string, clean: boolean, now = Date.now()): void {
    const client = clientOf(address, clientId);
    this.#recent.set(client, { at: now, node, clean });
    const armed = this.#armed.get(client);
    if (armed === undefined) return;
    clearTimeout(armed.timer);
    this.#armed.delete(client);
    this.#settle(armed.key, armed.revision, armed.record, clean);
  }

  /** Forgets claims older than `RECENT_MS` (every announcement tick). */
  prune(now: number): void {
    for (const [client, { at }] of this.#recent) if (now - at > RECENT_MS) this.#recent.delete(client);
  }

  /** `node` is gone: its records are read and each will armed for its delay (see the header). */
  nodeGone(node: string): void {
    this.#takeOver((r) => r.node === node, node);
  }

  /** Reads the bucket and arms (or settles) every will whose record `match` picks. */
  #takeOver(match: (record: WillRecord) => boolean, whose: string): void {
    const kv = this.#kv;
    if (kv === undefined) return;
    this.#chain = this.#chain.then(async () => {
      try {
        for await (const key of await kv.keys()) {
          const entry = await kv.get(key);
          if (entry === null || entry.operation !== 'PUT') continue;
          const record = fromBufferJson(entry.value) as WillRecord;
          if (!match(record)) continue;
          const client = clientOf(record.address, record.clientId);
          if (this.#armed.has(client)) continue;
          // Connected since on another node (its connection on the node gone does not count).
          const recent = this.#recent.get(client);
          if (recent !== undefined && recent.node !== record.node && settledBy(record, recent))
            this.#settle(key, entry.revision, record, recent.clean);
          else this.#arm(key, entry.revision, record);
        }
      } catch (err) {
        this.stats.failed++;
        this.#host.logger.warn(
          { err: (err as Error).message, whose },
          'cluster: the wills of a node gone could not be read',
        );
      }
    });
  }

  /** A clean stop: this node's records go (no will is published for a stopping node). */
  async close(): Promise<void> {
    for (const { timer } of this.#armed.values()) clearTimeout(timer);
    this.#armed.clear();
    const kv = this.#kv;
    if (kv === undefined) return;
    const bound = (work: Promise<unknown>) =>
      Promise.race([work, new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
    await bound(Promise.all(this.#ops.values())); // writes on their way land first
    const deletes = [...this.#mine.values()].map(({ key, revision }) =>
      kv.delete(key, { previousSeq: revision }).catch(() => {}),
    );
    this.#mine.clear();
    await bound(Promise.all(deletes));
  }

  #flush(): void {
    const kv = this.#kv;
    if (kv === undefined) return; // kept until the bucket is there
    const dirty = this.#dirty;
    this.#dirty = new Map();
    for (const [client, [address, clientId]] of dirty) {
      const held = this.#host.broker(address)?.heldWill(clientId);
      if (held === undefined) {
        // Most clients hold no will and never had a record here: nothing to do for them.
        if (!this.#mine.has(client) && !this.#ops.has(client)) continue;
        this.#inOrder(client, async () => {
          const mine = this.#mine.get(client);
          if (mine === undefined) return;
          this.#mine.delete(client);
          // Refused: another node wrote it since.
          await kv.delete(mine.key, { previousSeq: mine.revision }).catch(() => {});
        });
        continue;
      }
      const key = keyOf(address, clientId);
      const record: WillRecord = {
        node: this.#host.nodeName,
        incarnation: this.#host.incarnation,
        address,
        clientId,
        message: held.message.toStored(),
        delaySeconds: held.delaySeconds,
        publishAt: held.publishAt,
      };
      this.#inOrder(client, async () => {
        this.#mine.set(client, { key, revision: await kv.put(key, toBufferJson(record)) });
        this.stats.written++;
      });
    }
  }

  /** Runs `op` after the earlier operations for `client`, so its puts and deletes keep their order. */
  #inOrder(client: string, op: () => Promise<void>): void {
    const next = (this.#ops.get(client) ?? Promise.resolve()).then(op).catch((err: unknown) => {
      this.stats.failed++;
      this.#host.logger.warn({ err: (err as Error).message }, 'cluster: a will record was not written');
    });
    this.#ops.set(client, next);
    void next.then(() => {
      if (this.#ops.get(client) === next) this.#ops.delete(client);
    });
  }

  #arm(key: string, revision: number, record: WillRecord): void {
    const now = Date.now();
    const at = record.publishAt ?? now + record.delaySeconds * 1000;
    const client = clientOf(record.address, record.clientId);
    const timer = setTimeout(
      () => {
        this.#armed.delete(client);
        this.#settle(key, revision, record, true);
      },
      Math.max(0, at - now),
    );
    timer.unref();
    this.#armed.set(client, { key, timer, revision, record });
  }

  /**
   * A gone node's will is due (`publish`) or its client resumed (not): the record is deleted as
   * a compare-and-set on the revision read, and only the node whose delete succeeds publishes.
   */
  #settle(key: string, revision: number, record: WillRecord, publish: boolean): void {
    const kv = this.#kv;
    if (kv === undefined) return;
    kv.delete(key, { previousSeq: revision })
      .then(
        () => {
          if (publish) this.#publish(record);
          else this.stats.cancelled++;
        },
        () => {}, // another survivor settled it first
      )
      .catch((err: unknown) => {
        this.stats.failed++;
        this.#host.logger.error(
          { err, clientId: record.clientId },
          'cluster: a will of a node gone was not published',
        );
      });
  }

  #publish(record: WillRecord): void {
    const broker = this.#host.broker(record.address);
    if (broker === undefined || broker.closed) return;
    this.stats.published++;
    this.#host.logger.info(
      { event: 'cluster_will_published', clientId: record.clientId, node: record.node },
      `cluster: will of ${record.clientId} published for node ${record.node}, gone`,
    );
    // A connected client's will was recorded at its CONNECT: its Message Expiry Interval counts
    // from now, as it would from the close on its own node (a waiting will's from that close).
    let message = record.message;
    if (record.publishAt === undefined) {
      const now = Date.now();
      const expiresAt =
        message.expiresAt === undefined ? undefined : now + (message.expiresAt - message.receivedAt);
      message = { ...message, receivedAt: now, expiresAt };
    }
    broker.publish(Message.fromStored(message));
  }
}
