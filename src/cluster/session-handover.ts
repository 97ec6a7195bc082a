/**
 * Persistent sessions follow their client from node to node (issue 19, first part): a client
 * that reconnects with Clean Start 0 to another node than the one holding its session resumes
 * it there, with its subscriptions, queued messages, unacknowledged QoS 1/2 messages (re-sent
 * with DUP), inbound QoS 2 packet ids and waiting will.
 *
 * - Ask: a node opening a session for a CONNECT with Clean Start 0 that it does not hold asks
 *   every other node at once (`pubsub.c.session.ask`, `{address, clientId, node}`, with a reply
 *   subject of its own) and waits, `ASK_TIMEOUT_MS` at most, for the session or for "none" from
 *   every node it knew when asking (a node that died answers nothing until the others forget it;
 *   NATS's "no responders" ends the wait at once when no other node listens). The CONNECT's
 *   packets wait meanwhile (Connection.readAfter); with no other node known, nothing is asked.
 * - Answer: every node answers. One holding the session closes its connection (0x8E, the will
 *   settled as for a takeover on one node), takes the session out whole (Broker.handOverSession:
 *   no will published, nothing left in its store) and sends it; the others send "none". An
 *   answer is framed `u16 node-name length · node name · u32 part · u32 parts · bytes` so a
 *   session larger than max_payload crosses in parts (JSON, Buffers as base64: `encodeSession`).
 *   Nothing it does may throw out of the NATS callback (the connection's reader would stop).
 * - Adopt: the first whole session that arrives is adopted at once (it has no subscription
 *   anywhere until then): restored, written to the node's store and opened as resumed (CONNACK
 *   Session Present 1). A second node holding the same client's session (a partition healed)
 *   hands it over too; that one is lost.
 * - A node that did not answer (dead, or cut off) is waited for until the others forget it
 *   before the journal is read, by when it has stopped serving the session (session-fence.ts).
 * - In transit: every ask names its move; the holder relays what is routed to the session's
 *   filters after it left and sends that tail to the new node, which holds the session's
 *   deliveries until it comes (session-tail.ts). A node asked for a session that is itself
 *   still waiting for its tail answers once the tail is in (at most `HOLD_MAX_MS` later).
 *
 * What this part does not do yet (docs/cluster.md): a session whose node died is not
 * recovered (its state is on that node's disk); the state crosses on core NATS, so a part lost
 * on the way loses the session (the client gets Session Present 0).
 */
import { randomUUID } from 'node:crypto';
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { createInbox } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { type Broker, discardRestoredSession, type FetchedSession } from '../broker/index.ts';
import type { JournaledMessageStore, StoredSession } from '../store/index.ts';
import { fromBufferJson, toBufferJson } from './buffer-json.ts';
import { FrameJoiner, frame, publishInParts, readFrame } from './framed-parts.ts';
import { claimSession } from './journal-stream.ts';
import { OrphanSessions } from './orphan-sessions.ts';
import { PEER_TIMEOUT_MS } from './peers.ts';
import { SessionFence } from './session-fence.ts';
import { NatsSessionJournal } from './session-journal.ts';
import { SessionTails } from './session-tail.ts';
import { ROOT } from './subjects.ts';

const ASK = `${ROOT}.c.session.ask`;
/** The longest a CONNECT waits for the other nodes' answers. */
export const ASK_TIMEOUT_MS = 2000;

/** Hand-over counters (metrics: pubsub_cluster_sessions_*_total). */
export interface HandoverStats {
  /** Sessions this node took from another one for a client connecting here. */
  adopted: number;
  /** Sessions this node gave to another one. */
  handedOver: number;
  /** Asks that ended at the timeout with some node silent. */
  askTimeouts: number;
  /** Answers that could not be read (a malformed frame, or a session that did not decode). */
  dropped: number;
}

export interface HandoverHost {
  readonly nodeName: string;
  readonly logger: Logger;
  /** The NATS connection while the link is up. */
  connection(): NatsConnection | undefined;
  /** Other nodes heard from lately (an ask waits for an answer from each), and their interest. */
  readonly peers: {
    names(): string[];
    wants(node: string, address: string, filter: string): boolean;
  };
  /** This node's broker at `address`, if it serves it. */
  broker(address: string): Broker | undefined;
  /** The NATS server's max_payload. */
  maxPayload(): number;
  /** This node's brokers (the journal reads their sessions). */
  brokers(): Iterable<Broker>;
  /**
   * The session journal's (session-journal.ts): the node's message store, when its session
   * writes are to be journaled; `--cluster-replicas`; `--store-batch-ms`, its commit window.
   */
  readonly journal: {
    readonly store: JournaledMessageStore | undefined;
    readonly replicas: () => number;
    readonly batchMs: number;
    /** The fence went up or down (session-fence.ts): what else waits for the cluster is told. */
    readonly fenced: (up: boolean) => void;
  };
}

interface Ask {
  readonly address: string;
  readonly clientId: string;
  readonly node: string;
  /** The move's name: the tail the holder sends names it (session-tail.ts). */
  readonly move: string;
}

/** How long a CONNECT waits before asking again for a session a live node wrote last. */
const RECLAIM_PAUSE_MS = 50;

/** Put in an ask's `silent` when NATS said no other node listens (no node name is empty). */
const NOBODY = '';

/** How often an ask for a session that waits for its own tail looks again. */
const BUSY_RETRY_MS = 10;

export class SessionHandover {
  readonly #host: HandoverHost;
  readonly stats: HandoverStats = { adopted: 0, handedOver: 0, askTimeouts: 0, dropped: 0 };
  /** The tails of sessions moving (session-tail.ts). */
  readonly tails: SessionTails;
  /** Sessions journaled in JetStream, resumed from there when their node is gone (session-journal.ts). */
  readonly journal: NatsSessionJournal;
  /** Persistent sessions not served while this node is cut off (session-fence.ts). */
  readonly fence: SessionFence;
  /** Sessions of nodes gone, adopted here when this node sorts first (orphan-sessions.ts). */
  readonly orphans: OrphanSessions;
  #sub: Subscription | undefined;

  constructor(host: HandoverHost) {
    this.#host = host;
    const brokerOf = (id: string): Broker | undefined => [...host.brokers()].find((b) => b.id === id);
    this.journal = new NatsSessionJournal({
      nodeName: host.nodeName,
      logger: host.logger,
      persistent: function* () {
        for (const broker of host.brokers())
          for (const [clientId, session] of broker.sessions)
            if (session.expiryInterval > 0) yield [broker.id, clientId] as const;
      },
      discard: (brokerId, clientId) => {
        const broker = brokerOf(brokerId);
        if (broker !== undefined) discardRestoredSession(broker, clientId);
      },
      replicas: host.journal.replicas,
      batchMs: host.journal.batchMs,
      maxPayload: () => host.maxPayload(),
      session: (brokerId, clientId) => {
        const session = brokerOf(brokerId)?.sessions.get(clientId);
        return session !== undefined && session.expiryInterval > 0 ? session.stored() : undefined;
      },
    });
    host.journal.store?.attach(this.journal);
    this.fence = new SessionFence({
      logger: host.logger,
      connection: () => host.connection(),
      brokers: () => host.brokers(),
      journaled: () => host.journal.store !== undefined && this.journal.available,
      fenced: (up) => {
        this.journal.setFenced(up);
        host.journal.fenced(up);
      },
      regained: () => this.journal.recheck(),
    });
    this.orphans = new OrphanSessions({
      nodeName: host.nodeName,
      logger: host.logger,
      connection: () => host.connection(),
      peers: () => host.peers.names(),
      brokers: () => host.brokers(),
      journal: () => (this.journal.opening ? undefined : this.journal.usable),
    });
    this.tails = new SessionTails({
      nodeName: host.nodeName,
      logger: host.logger,
      connection: () => host.connection(),
      broker: (address) => host.broker(address),
      peerWants: (node, address, filter) => host.peers.wants(node, address, filter),
      maxPayload: () => host.maxPayload(),
      afterJournal: (fn) => this.afterJournal(fn),
    });
  }

  /** At every (re)connection: answer the other nodes' asks, take their tails, journal. */
  linkUp(nc: NatsConnection): void {
    this.tails.linkUp(nc);
    this.fence.linkUp();
    void this.journal.up(nc);
    if (this.#sub !== undefined && !this.#sub.isClosed()) return;
    this.#sub = nc.subscribe(ASK, {
      callback: (err, msg) => {
        if (err === null) this.#answer(nc, msg);
      },
    });
  }

  /**
   * The session of `clientId` on `address` from whichever other node holds it (undefined: none
   * does, or no answer in time); undefined at once (no promise) when there is nobody to ask.
   */
  fetch(address: string, clientId: string): Promise<FetchedSession | undefined | 'unavailable'> | undefined {
    const nc = this.#host.connection();
    // With a journal in use and the link down, whether the session exists cannot be known: a
    // new empty one would replace the journaled one at its first snapshot.
    if (nc === undefined) return this.journal.available ? Promise.resolve('unavailable') : undefined;
    const silent: string[] = [];
    const asked = this.#ask(nc, address, clientId, silent);
    const broker = this.#host.broker(address);
    if (broker === undefined || this.#host.journal.store === undefined) return asked;
    // No node holds it (or one did not answer: gone): the journal may, for a node that died;
    // read once the silent ones are forgotten, when they no longer serve it (session-fence.ts).
    return (asked ?? Promise.resolve(undefined)).then(async (found) => {
      if (found !== undefined) return found;
      // A node still known then (alive but silent) may serve the session: not read, refused.
      if (!(await this.#forgotten(silent))) return 'unavailable';
      if (broker.sessions.has(clientId)) return undefined; // adopted here meanwhile (orphan-sessions.ts)
      return this.#fromJournal(nc, broker, clientId, asked === undefined || silent.includes(NOBODY));
    });
  }

  /** Whether none of `nodes` is known any more, waiting for it `PEER_TIMEOUT_MS` and a second at most. */
  async #forgotten(nodes: string[]): Promise<boolean> {
    const deadline = Date.now() + PEER_TIMEOUT_MS + 1000;
    for (;;) {
      const known = new Set(this.#host.peers.names());
      if (!nodes.some((n) => known.has(n))) return true;
      if (Date.now() >= deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /**
   * The session as the journal holds it, claimed for this node (orphan-sessions.ts
   * `claimSession`): when another live node wrote it last (it holds it, or is adopting it) the
   * nodes are asked again first (twice, 50 ms apart); when the claim finds a newer write they are
   * asked once more, and without an answer the CONNECT is refused (0x88; the client's retry
   * finds it); adopted here meanwhile (an orphan scan), the session here is resumed. `nobody`: NATS said no other node listens, so none is live.
   */
  async #fromJournal(
    nc: NatsConnection,
    broker: Broker,
    clientId: string,
    nobody: boolean,
  ): Promise<FetchedSession | undefined | 'unavailable'> {
    try {
      const read = await this.journal.read(nc, broker.id, clientId);
      const session = read?.session;
      if (session === undefined) return undefined;
      const usable = this.journal.usable;
      if (usable === undefined) return 'unavailable';
      // Written last by a live node: it holds the session, or is adopting it (its claim is in,
      // its adoption a moment after). Asked again, twice; nobody holding it, it is claimed here.
      if (!nobody && this.#host.peers.names().includes(read!.writer))
        for (const pause of [0, RECLAIM_PAUSE_MS]) {
          await new Promise((resolve) => setTimeout(resolve, pause));
          if (broker.sessions.has(clientId)) return undefined;
          const held = await this.#ask(nc, broker.address, clientId, []);
          if (held !== undefined) return held;
        }
      if (!(await claimSession(usable.js, read!.subject, read!.seq, this.#host.nodeName))) {
        if (broker.sessions.has(clientId)) return undefined;
        const again = await this.#ask(nc, broker.address, clientId, []);
        return again ?? (broker.sessions.has(clientId) ? undefined : 'unavailable');
      }
      this.#host.logger.info(
        { event: 'cluster_session_recovered', clientId },
        `cluster: session of ${clientId} resumed from the journal (no node holds it)`,
      );
      return { session, move: undefined };
    } catch (err) {
      this.#host.logger.warn(
        { err: (err as Error).message, clientId },
        'cluster: the session journal could not be read; the CONNECT is refused (0x88) rather than answered with a new session',
      );
      return 'unavailable';
    }
  }

  /** Asks the other nodes; those that did not answer in time are added to `silent`. */
  #ask(
    nc: NatsConnection,
    address: string,
    clientId: string,
    silent: string[],
  ): Promise<FetchedSession | undefined> | undefined {
    const waiting = new Set(this.#host.peers.names());
    if (waiting.size === 0) return undefined;
    const move = randomUUID();
    return new Promise((resolve) => {
      const joiner = new FrameJoiner();
      let found: FetchedSession | undefined;
      let timer: NodeJS.Timeout | undefined;
      let sub: Subscription | undefined;
      const done = (timedOut: boolean): void => {
        clearTimeout(timer);
        sub?.unsubscribe();
        if (found !== undefined) this.stats.adopted++;
        if (timedOut) {
          silent.push(...waiting);
          this.stats.askTimeouts++;
          this.#host.logger.warn(
            { event: 'cluster_session_ask_timeout', clientId, silent: [...waiting] },
            `cluster: ${[...waiting].join(', ')} did not answer for the session of ${clientId} within ${ASK_TIMEOUT_MS} ms`,
          );
        }
        resolve(found);
      };
      const onAnswer = (msg: Msg): void => {
        // NATS says no other node listens (those known are gone): nobody holds the session.
        if (msg.data.length === 0 && msg.headers?.code === 503) {
          silent.push(NOBODY);
          return done(false);
        }
        const frame = readFrame(msg.data);
        if (frame === undefined) {
          this.stats.dropped++;
          return;
        }
        if (frame.parts > 0) {
          const whole = joiner.add(frame);
          if (whole === undefined) return;
          try {
            found = { session: decodeSession(whole), move };
            this.tails.expect(address, clientId, move, frame.node);
            return done(false); // adopted at once: the session is nowhere until then
          } catch (e) {
            this.stats.dropped++;
            this.#host.logger.warn(
              { err: (e as Error).message, from: frame.node, clientId },
              'cluster: a handed-over session could not be read',
            );
          }
        }
        waiting.delete(frame.node); // only the nodes known when asking count
        if (waiting.size === 0) done(false);
      };
      try {
        const inbox = createInbox();
        sub = nc.subscribe(inbox, {
          callback: (err, msg) => {
            if (err === null) onAnswer(msg);
          },
        });
        const ask: Ask = { address, clientId, node: this.#host.nodeName, move };
        nc.publish(ASK, JSON.stringify(ask), { reply: inbox });
        timer = setTimeout(() => done(true), ASK_TIMEOUT_MS);
      } catch (e) {
        this.#host.logger.warn(
          { err: (e as Error).message, clientId },
          'cluster: a session ask was not sent',
        );
        done(false);
      }
    });
  }

  /** Another node asks for a client's session: the session (handed over), or "none". */
  #answer(nc: NatsConnection, msg: Msg): void {
    let ask: Ask;
    try {
      ask = msg.json() as Ask;
    } catch {
      return;
    }
    if (msg.reply === undefined || ask.node === this.#host.nodeName || typeof ask.clientId !== 'string')
      return;
    const node = this.#host.nodeName;
    const broker = this.#host.broker(ask.address);
    if (broker?.sessions.get(ask.clientId)?.moving !== undefined) {
      // Still waiting for its own tail: answered once that is in (a bounded wait, session-tail.ts).
      setTimeout(() => this.#answer(nc, msg), BUSY_RETRY_MS).unref();
      return;
    }
    let leaving: ReturnType<Broker['handOverSession']>;
    try {
      // Its restored copies are in doubt until checked (journal-restart.ts): none is handed over;
      // the asking node reads the journal instead.
      if (!this.fenced) leaving = broker?.handOverSession(ask.clientId, ask.node);
    } catch (e) {
      this.#host.logger.error({ err: e, clientId: ask.clientId }, 'cluster: handing a session over failed');
    }
    if (leaving !== undefined && typeof ask.move === 'string')
      this.tails.relay(ask.address, ask.clientId, ask.move, ask.node, leaving.relay);
    else leaving?.relay.end();
    const session = leaving?.session;
    if (session === undefined) {
      try {
        nc.publish(msg.reply, frame(node, 0, 0, Buffer.alloc(0)));
      } catch {} // the link went: the asking node waits its bound
      return;
    }
    this.stats.handedOver++;
    this.#host.logger.info(
      { event: 'cluster_session_handed_over', clientId: ask.clientId, to: ask.node },
      `cluster: session of ${ask.clientId} handed over to node ${ask.node}`,
    );
    try {
      publishInParts(nc, msg.reply, node, encodeSession(session), this.#host.maxPayload());
    } catch (e) {
      // A callback of nats.js must not throw (its reader would stop): the session is lost.
      this.#host.logger.error(
        { err: e, clientId: ask.clientId },
        'cluster: a handed-over session was not sent',
      );
    }
  }

  /**
   * Whether persistent sessions are refused here now: cut off from NATS (session-fence.ts), or
   * not yet sure of the copies restored from disk (journal-restart.ts).
   */
  get fenced(): boolean {
    return this.fence.fenced || this.opening;
  }

  /** Whether this node is still checking the copies restored from its disk (journal-restart.ts). */
  get opening(): boolean {
    return this.#host.journal.store !== undefined && this.journal.opening;
  }

  /** Runs `fn` once this node's store and session journal hold every write made so far. */
  afterJournal(fn: (error?: Error) => void): void {
    const store = this.#host.journal.store;
    if (store === undefined) fn();
    else store.afterJournal(fn);
  }

  /** The link went down: the journal stops publishing until it is back. */
  linkDown(): void {
    this.journal.down();
  }

  close(): void {
    this.#sub?.unsubscribe();
    this.#sub = undefined;
    this.tails.close();
    this.fence.close();
    this.journal.close();
    this.#host.journal.store?.attach(undefined);
  }
}

/** A session as JSON, every Buffer (payloads, correlation data) as `{"$b": base64}`. */
export function encodeSession(session: StoredSession): Buffer {
  return toBufferJson(session);
}

export function decodeSession(bytes: Buffer): StoredSession {
  const session = fromBufferJson(bytes) as StoredSession;
  if (typeof session?.clientId !== 'string' || !Array.isArray(session.outbound))
    throw new Error('not a session');
  return session;
}
