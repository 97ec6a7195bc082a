/**
 * The tail of a session moving between nodes (issue 19: nothing lost or doubled in a hand-over
 * under load). Between the moment a node hands a session over (its subscriptions leave) and the
 * moment the new node's interest in the session's filters has reached every node, a message
 * published anywhere could reach neither node. So:
 *
 * - Leaving node: the session's plain subscriptions stay in its index under a relay that
 *   collects what is routed to them (broker/session-relay.ts). Every `POLL_MS` it asks whether
 *   the new node is known to want every one of those filters (its interest announcement has
 *   arrived here); once so it waits `GRACE_MS` more, for the announcement to reach the other
 *   nodes too (and with it, on the same NATS routes, the new node's subscriptions), then ends
 *   the relay and sends what it collected, the tail, to `pubsub.c.session.tail.<new node>`.
 *   It never relays longer than `RELAY_MAX_MS`.
 * - New node: the adopted session holds its deliveries (session/move-hold.ts) until the tail
 *   of its move arrives, or `HOLD_MAX_MS` passes (the leaving node died, or the tail was lost:
 *   logged and counted), then delivers the tail and what it held, each message once.
 *
 * The tail crosses as JSON (buffer-json.ts), in parts under max_payload (framed-parts.ts), each
 * message with its identity (Message.origin/.serial) so the new node can tell the copies.
 * Nothing here throws out of a NATS callback or a timer.
 *
 * Acknowledgements (delivery-confirms.ts): what a move holds in memory (a relay's tail, an
 * arriving session's held deliveries) is in no journal yet, so a node's answer to another
 * node's confirmation ask waits for the moves under way (`afterMoves`): a relay until the new
 * node said it journaled the tail (`pubsub.c.session.tailed.<node>`, a request answered once that
 * node's store and journal hold what the tail wrote), an arrival until its tail came (or
 * `HOLD_MAX_MS`) and its deliveries were made.
 */
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { Broker, SessionRelay } from '../broker/index.ts';
import { Message } from '../router/index.ts';
import type { StoredMessage } from '../store/index.ts';
import { fromBufferJson, toBufferJson } from './buffer-json.ts';
import { FrameJoiner, publishInParts, readFrame } from './framed-parts.ts';
import { escapeLevel, ROOT } from './subjects.ts';

/** How often a leaving node looks for the new node's interest. */
export const POLL_MS = 5;
/** How long it relays after seeing that interest, for the other nodes to see it too. */
export const GRACE_MS = 25;
/** The longest a leaving node relays a session. */
export const RELAY_MAX_MS = 1000;
/** The longest an arriving session holds its deliveries for the tail. */
export const HOLD_MAX_MS = 1500;

const tailSubject = (node: string): string => `${ROOT}.c.session.tail.${escapeLevel(node)}`;
const tailedSubject = (node: string): string => `${ROOT}.c.session.tailed.${escapeLevel(node)}`;
/** How long a leaving node waits for the new node to say it journaled the tail. */
const TAILED_TIMEOUT_MS = 12_000;
const TAIL_NOT_HELD = new Error("a moved session's tail was not confirmed by its new node");

/** Tail counters (metrics: pubsub_cluster_session_tail*). */
export interface TailStats {
  /** Tails this node sent, and the messages they carried. */
  sent: number;
  relayed: number;
  /** Tails this node received for a session it held deliveries for. */
  received: number;
  /** Sessions that stopped holding without their tail (`HOLD_MAX_MS`). */
  missed: number;
  /** Deliveries held that the tail also carried (delivered once). */
  copies: number;
  /** Messages not relayed or held because a relay or a hold was full. */
  dropped: number;
}

export interface TailHost {
  readonly nodeName: string;
  readonly logger: Logger;
  connection(): NatsConnection | undefined;
  broker(address: string): Broker | undefined;
  /** Whether `node` is known to want `filter` on broker `address` (its interest announcement). */
  peerWants(node: string, address: string, filter: string): boolean;
  maxPayload(): number;
  /** Runs `fn` once this node's store and session journal hold every write made so far. */
  afterJournal(fn: (error?: Error) => void): void;
}

interface Tail {
  readonly address: string;
  readonly clientId: string;
  readonly move: string;
  readonly messages: readonly { o: number; s: number; m: StoredMessage }[];
}

interface Arrival {
  readonly address: string;
  readonly clientId: string;
  readonly from: string;
  readonly timer: NodeJS.Timeout;
}

export class SessionTails {
  readonly #host: TailHost;
  readonly stats: TailStats = { sent: 0, relayed: 0, received: 0, missed: 0, copies: 0, dropped: 0 };
  readonly #arrivals = new Map<string, Arrival>();
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #joiner = new FrameJoiner();
  #sub: Subscription | undefined;
  #tailedSub: Subscription | undefined;
  /** Moves under way here (relays and arrivals, by move), each settled once it is journaled. */
  readonly #moving = new Map<string, { done: Promise<Error | undefined>; settle(error?: Error): void }>();

  constructor(host: TailHost) {
    this.#host = host;
  }

  /** At every (re)connection: receive the tails other nodes send here. */
  linkUp(nc: NatsConnection): void {
    if (this.#sub !== undefined && !this.#sub.isClosed()) return;
    this.#sub = nc.subscribe(tailSubject(this.#host.nodeName), {
      callback: (err, msg) => {
        if (err === null) this.#received(msg.data);
      },
    });
    // After the tail on the same connection: what it wrote is written; answered once journaled.
    this.#tailedSub = nc.subscribe(tailedSubject(this.#host.nodeName), {
      callback: (err, msg) => {
        if (err !== null) return;
        this.#host.afterJournal((error) => {
          try {
            msg.respond(error === undefined ? 'ok' : 'failed');
          } catch {
            // The link is down: the leaving node times out and says so.
          }
        });
      },
    });
  }

  /**
   * Runs `fn` once every move under way now is journaled (see the header), with the first
   * error one of them had; at once when none is.
   */
  afterMoves(fn: (error?: Error) => void): void {
    if (this.#moving.size === 0) return fn();
    Promise.all([...this.#moving.values()].map((m) => m.done)).then(
      (errors) => fn(errors.find((e) => e !== undefined)),
      (err: Error) => fn(err),
    );
  }

  #started(move: string): void {
    let settle!: (error?: Error) => void;
    const done = new Promise<Error | undefined>((resolve) => {
      settle = (error?: Error) => {
        if (this.#moving.get(move)?.done === done) this.#moving.delete(move);
        resolve(error);
      };
    });
    this.#moving.set(move, { done, settle });
  }

  #settled(move: string, error?: Error): void {
    this.#moving.get(move)?.settle(error);
  }

  /** A session of `move` was adopted here from `from`: its deliveries wait for the tail. */
  expect(address: string, clientId: string, move: string, from: string): void {
    const timer = setTimeout(() => {
      this.#arrivals.delete(move);
      this.stats.missed++;
      this.#host.logger.warn(
        { event: 'cluster_session_tail_missed', clientId, from },
        `cluster: no tail from node ${from} for the session of ${clientId} within ${HOLD_MAX_MS} ms; its held messages go out`,
      );
      this.#end(address, clientId, move, []);
    }, HOLD_MAX_MS);
    timer.unref();
    this.#arrivals.set(move, { address, clientId, from, timer });
    this.#started(move);
  }

  /** Relays a session handed over to `to` until that node's interest is everywhere (header). */
  relay(address: string, clientId: string, move: string, to: string, relay: SessionRelay): void {
    this.#started(move);
    const started = Date.now();
    let seenAt = 0;
    const filters = [...relay.filters];
    const tick = (): void => {
      this.#timers.delete(timer);
      const now = Date.now();
      if (seenAt === 0 && filters.every((f) => this.#host.peerWants(to, address, f))) seenAt = now;
      if ((seenAt === 0 || now - seenAt < GRACE_MS) && now - started < RELAY_MAX_MS) {
        timer = setTimeout(tick, POLL_MS);
        this.#timers.add(timer);
        return;
      }
      this.#send({ address, clientId, move }, to, relay);
    };
    let timer = setTimeout(tick, filters.length === 0 ? 0 : POLL_MS);
    this.#timers.add(timer);
  }

  #send(tail: Omit<Tail, 'messages'>, to: string, relay: SessionRelay): void {
    const messages = relay.end();
    this.stats.dropped += relay.dropped;
    const nc = this.#host.connection();
    try {
      if (nc === undefined) throw new Error('the NATS link is down');
      const body: Tail = {
        ...tail,
        messages: messages.map((m) => ({ o: m.origin, s: m.serial, m: m.toStored() })),
      };
      publishInParts(nc, tailSubject(to), this.#host.nodeName, toBufferJson(body), this.#host.maxPayload());
      this.stats.sent++;
      this.stats.relayed += messages.length;
      nc.request(tailedSubject(to), tail.move, { timeout: TAILED_TIMEOUT_MS }).then(
        (reply) => this.#settled(tail.move, reply.string() === 'ok' ? undefined : TAIL_NOT_HELD),
        () => this.#settled(tail.move, TAIL_NOT_HELD),
      );
    } catch (e) {
      this.#settled(tail.move, messages.length === 0 ? undefined : TAIL_NOT_HELD);
      this.#host.logger.error(
        { err: (e as Error).message, clientId: tail.clientId, to, messages: messages.length },
        `cluster: the tail of the session of ${tail.clientId} was not sent to node ${to}`,
      );
    }
  }

  #received(data: Uint8Array): void {
    const f = readFrame(data);
    const whole = f === undefined ? undefined : this.#joiner.add(f);
    if (whole === undefined) return;
    let tail: Tail;
    try {
      tail = fromBufferJson(whole) as Tail;
      if (typeof tail?.move !== 'string' || !Array.isArray(tail.messages)) throw new Error('not a tail');
    } catch (e) {
      this.#host.logger.warn(
        { err: (e as Error).message, from: f?.node },
        'cluster: a session tail could not be read',
      );
      return;
    }
    const arrival = this.#arrivals.get(tail.move);
    if (arrival === undefined) {
      this.#host.logger.warn(
        {
          event: 'cluster_session_tail_late',
          clientId: tail.clientId,
          from: f?.node,
          messages: tail.messages.length,
        },
        `cluster: a tail for the session of ${tail.clientId} came after its session stopped waiting; its messages are lost`,
      );
      return;
    }
    clearTimeout(arrival.timer);
    this.#arrivals.delete(tail.move);
    this.stats.received++;
    const messages = tail.messages.map(({ o, s, m }) => {
      const message = Message.fromStored(m);
      message.origin = o;
      message.serial = s;
      return message;
    });
    this.#end(arrival.address, arrival.clientId, tail.move, messages);
  }

  #end(address: string, clientId: string, move: string, messages: Message[]): void {
    try {
      const ended = this.#host.broker(address)?.endMove(clientId, move, messages);
      if (ended !== undefined) {
        this.stats.copies += ended.copies;
        this.stats.dropped += ended.dropped;
      }
    } catch (e) {
      this.#host.logger.error({ err: e, clientId }, 'cluster: delivering a session tail failed');
    }
    this.#host.afterJournal((error) => this.#settled(move, error)); // what the deliveries wrote
  }

  close(): void {
    this.#sub?.unsubscribe();
    this.#sub = undefined;
    this.#tailedSub?.unsubscribe();
    this.#tailedSub = undefined;
    for (const m of [...this.#moving.values()]) m.settle();
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    for (const arrival of this.#arrivals.values()) clearTimeout(arrival.timer);
    this.#arrivals.clear();
  }
}
