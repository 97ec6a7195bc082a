/**
 * Cross-node QoS 1/2 messages are acknowledged only once the nodes they went to hold them
 * (issue 19: "nothing acknowledged is lost" when the node holding a session dies).
 *
 * A QoS 1/2 message published here that crosses to other nodes (plain interest, or a shared
 * group's member there) reaches their sessions over core NATS, at most once. Its publisher's
 * PUBACK/PUBREC waits (the message store's `afterCommit`, store/journaled-message-store.ts)
 * until each of those nodes says that it routed everything this node sent it before and that
 * its own store and session journal hold what that wrote: then a node dying afterwards leaves
 * the message in the journal another node resumes the session from.
 *
 * - Publisher side: each message sent on names its nodes (`need`); at the end of the turn,
 *   after the turn's batches, one round asks each of those nodes once,
 *   `pubsub.c.confirm.<node>` `{node, round}` (one NATS connection keeps the order: the ask
 *   comes after the batches it covers). Rounds settle in order; an acknowledgement waiting for
 *   a round gets that round's outcome.
 * - Receiving side: an ask is answered on `pubsub.c.confirmed.<asker>` `{node, round, ok}` once
 *   every message routed here before it is delivered (a large fan-out split over turns included),
 *   the sessions moving then keep in a journal what they held in memory (`afterMoves`,
 *   session-tail.ts) and the store and journal committed what that wrote (`afterJournal`). None
 *   of these waits for this node's own rounds: two nodes publishing to each other cannot wait
 *   for each other.
 *   `ok` is false when the journal did not take it (fenced, no quorum).
 * - A round fails (the acknowledgements say 0x80 Unspecified error to v5 publishers, and v3
 *   publishers are disconnected, as when the node's own store fails: durable-acks.ts) when a
 *   node it waits for answers not ok, is forgotten by the membership (dead: `nodeGone`), does
 *   not answer within `CONFIRM_TIMEOUT_MS`, or when this node's link was down (the message could
 *   not cross, or the answer was lost). A failed acknowledgement does not say the message went
 *   nowhere: it may have reached some sessions, and a publisher that sends it again may deliver
 *   it twice (docs/cluster.md).
 * - Not covered: a message a node sends on again (a shared message whose member left there,
 *   `MAX_HOPS`) is confirmed by that node, not by the next.
 */
import { randomInt } from 'node:crypto';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { Broker } from '../broker/index.ts';
import { ROUTED_PENDING, type Routed } from '../session/index.ts';
import { escapeLevel, ROOT } from './subjects.ts';

/** A node that does not answer for this long fails the acknowledgements waiting for it. */
export const CONFIRM_TIMEOUT_MS = 12_000;
const CHECK_MS = 500;

const askSubject = (node: string): string => `${ROOT}.c.confirm.${escapeLevel(node)}`;
const answerSubject = (node: string): string => `${ROOT}.c.confirmed.${escapeLevel(node)}`;

const NOT_HELD = new Error('another node did not confirm it holds the message');
const GONE = new Error('a node the message went to left the cluster before confirming it');
const LATE = new Error('a node the message went to did not confirm it in time');
const LINK_DOWN = new Error(
  'the cluster link was down: the message could not cross to every node that wanted it',
);

/** Confirmation counters (metrics: pubsub_cluster_confirm_*_total). */
export interface ConfirmStats {
  /** Rounds asked, and nodes asked in all. */
  rounds: number;
  asks: number;
  /** Rounds that failed (their acknowledgements say so). */
  failed: number;
  /** Asks of other nodes answered here. */
  answered: number;
}

export interface ConfirmHost {
  readonly nodeName: string;
  readonly logger: Logger;
  /** Runs `fn` once the node's store and session journal hold every write made so far. */
  afterJournal(fn: (error?: Error) => void): void;
  /** Runs `fn` once the sessions moving now hold in a journal what they held in memory (session-tail.ts). */
  afterMoves(fn: (error?: Error) => void): void;
}

interface Round {
  readonly id: number;
  /** `made` when it was asked: it settles every `need` up to it. */
  readonly ticket: number;
  readonly waiting: Set<string>;
  readonly at: number;
  error: Error | undefined;
}

interface AskMessage {
  readonly node: string;
  readonly round: number;
}
interface AnswerMessage extends AskMessage {
  readonly ok: boolean;
}

export class DeliveryConfirms {
  readonly stats: ConfirmStats = { rounds: 0, asks: 0, failed: 0, answered: 0 };
  readonly #host: ConfirmHost;
  /** Nodes this turn's QoS 1/2 messages went to; whether one could not be sent. */
  #turn = new Set<string>();
  #turnFailed = false;
  /** Messages needing a confirmation so far, and how many of them are settled. */
  #made = 0;
  #settled = 0;
  /** Round ids, from a random start: an answer meant for an earlier process of this node is not taken. */
  #ids = randomInt(0, 2 ** 40);
  /** Rounds not settled, in the order asked. */
  readonly #rounds: Round[] = [];
  readonly #byId = new Map<number, Round>();
  #waiters: { ticket: number; fn: (error?: Error) => void }[] = [];
  #subs: Subscription[] = [];
  readonly #checker: NodeJS.Timeout;
  #failSaid = false;
  /** Deliveries of messages from other nodes split over turns (fan-out.ts), by ticket, in order. */
  #routing: { ticket: number; done: boolean; broker: Broker }[] = [];
  #routingTickets = 0;
  #afterRouting: { ticket: number; fn: () => void }[] = [];

  constructor(host: ConfirmHost) {
    this.#host = host;
    this.#checker = setInterval(() => this.#expire(Date.now()), CHECK_MS);
    this.#checker.unref();
  }

  // ---- publisher side ----

  /** A QoS 1/2 message went (or, with the link down, could not go) to `nodes`. */
  need(nodes: readonly string[], sent: boolean): void {
    if (nodes.length === 0) return;
    for (let i = 0; i < nodes.length; i++) this.#turn.add(nodes[i]!);
    if (!sent) this.#turnFailed = true;
    this.#made++;
  }

  /** Some acknowledgement may have to wait for a round. */
  get pending(): boolean {
    return this.#settled < this.#made;
  }

  /** Runs `fn` once every message that needed a confirmation so far has its round settled. */
  whenConfirmed(fn: (error?: Error) => void): void {
    if (this.#settled >= this.#made) fn();
    else this.#waiters.push({ ticket: this.#made, fn });
  }

  /** The turn's batches are sent: asks each node they went to (after them on the connection). */
  flush(nc: NatsConnection | undefined): void {
    if (this.#turn.size === 0 && !this.#turnFailed) return;
    const round: Round = {
      id: ++this.#ids,
      ticket: this.#made,
      waiting: this.#turn,
      at: Date.now(),
      error: this.#turnFailed || nc === undefined ? LINK_DOWN : undefined,
    };
    this.#turn = new Set();
    this.#turnFailed = false;
    this.#rounds.push(round);
    this.stats.rounds++;
    if (round.error !== undefined) round.waiting.clear();
    else {
      this.#byId.set(round.id, round);
      const ask = JSON.stringify({ node: this.#host.nodeName, round: round.id } satisfies AskMessage);
      try {
        for (const node of round.waiting) {
          nc!.publish(askSubject(node), ask);
          this.stats.asks++;
        }
      } catch {
        round.error = LINK_DOWN;
        round.waiting.clear();
      }
    }
    this.#advance();
  }

  #answered(m: AnswerMessage): void {
    const round = this.#byId.get(m.round);
    if (round === undefined || !round.waiting.delete(m.node)) return;
    if (m.ok !== true) round.error ??= NOT_HELD;
    if (round.waiting.size === 0) this.#advance();
  }

  /** A node left the membership (dead, or said goodbye): what waits for it fails. */
  nodeGone(name: string): void {
    this.#failWhere((round) => round.waiting.has(name), GONE);
  }

  /** The link went down: answers to the rounds asked are lost, so they fail. */
  linkDown(): void {
    this.#failWhere(() => true, LINK_DOWN);
  }

  #expire(now: number): void {
    // A deleted broker's split deliveries are never made, nor said to be done.
    if (this.#routing.some((entry) => entry.broker.closed && !entry.done)) {
      for (const entry of this.#routing) if (entry.broker.closed) entry.done = true;
      this.#routingDone();
    }
    const head = this.#rounds[0];
    if (head !== undefined && now - head.at > CONFIRM_TIMEOUT_MS)
      this.#failWhere((round) => round.waiting.size > 0 && now - round.at > CONFIRM_TIMEOUT_MS, LATE);
  }

  #failWhere(which: (round: Round) => boolean, error: Error): void {
    let any = false;
    for (const round of this.#rounds)
      if (round.waiting.size > 0 && which(round)) {
        round.error ??= error;
        round.waiting.clear();
        any = true;
      }
    if (any) this.#advance();
  }

  /** Settles the rounds answered in full, in order, and the acknowledgements waiting for them. */
  #advance(): void {
    while (this.#rounds.length > 0 && this.#rounds[0]!.waiting.size === 0) {
      const round = this.#rounds.shift()!;
      this.#byId.delete(round.id);
      if (round.error !== undefined) {
        this.stats.failed++;
        if (!this.#failSaid)
          this.#host.logger.warn(
            { event: 'cluster_confirm_failed', err: round.error.message },
            'cluster: QoS 1/2 messages to other nodes were not confirmed; their acknowledgements say so',
          );
        this.#failSaid = true; // once until a round is confirmed again
      } else this.#failSaid = false;
      this.#settled = round.ticket;
      let i = 0;
      while (i < this.#waiters.length && this.#waiters[i]!.ticket <= round.ticket) i++;
      if (i === 0) continue;
      for (const w of this.#waiters.splice(0, i)) {
        try {
          w.fn(round.error);
        } catch (err) {
          this.#host.logger.error({ err }, 'cluster: a confirmation callback threw');
        }
      }
    }
  }

  // ---- receiving side ----

  /**
   * A message from another node was routed on `broker` with `routed`: a delivery split over
   * turns (`ROUTED_PENDING`) is waited for before the asks that came after it are answered.
   */
  routed(broker: Broker, routed: Routed): void {
    if ((routed & ROUTED_PENDING) === 0) return;
    const entry = { ticket: ++this.#routingTickets, done: false, broker };
    this.#routing.push(entry);
    const done = (): void => {
      if (entry.done) return;
      entry.done = true;
      this.#routingDone();
    };
    broker.whenRouted(done, done);
  }

  #routingDone(): void {
    while (this.#routing.length > 0 && this.#routing[0]!.done) this.#routing.shift();
    const first = this.#routing[0]?.ticket ?? Number.POSITIVE_INFINITY;
    let i = 0;
    while (i < this.#afterRouting.length && this.#afterRouting[i]!.ticket <= first) i++;
    for (const w of this.#afterRouting.splice(0, i)) w.fn();
  }

  /** Runs `fn` once every split delivery of a message routed before now is made. */
  #whenRouted(fn: () => void): void {
    if (this.#routing.length === 0) fn();
    else this.#afterRouting.push({ ticket: this.#routingTickets + 1, fn });
  }

  #ask(nc: NatsConnection, m: AskMessage): void {
    if (typeof m.node !== 'string' || typeof m.round !== 'number') return;
    this.#whenRouted(() =>
      this.#host.afterMoves((moved) =>
        this.#host.afterJournal((journaled) => this.#answer(nc, m, moved ?? journaled)),
      ),
    );
  }

  #answer(nc: NatsConnection, m: AskMessage, error: Error | undefined): void {
    try {
      const answer: AnswerMessage = { node: this.#host.nodeName, round: m.round, ok: error === undefined };
      nc.publish(answerSubject(m.node), JSON.stringify(answer));
      this.stats.answered++;
    } catch {
      // The link is down: the asking node fails the round itself (its link, or the timeout).
    }
  }

  /** At every (re)connection: the asks to this node and the answers to its own. */
  linkUp(nc: NatsConnection): void {
    for (const sub of this.#subs) sub.unsubscribe();
    const on = (subject: string, handle: (data: unknown) => void): Subscription =>
      nc.subscribe(subject, {
        callback: (err, msg) => {
          if (err !== null) return;
          try {
            handle(msg.json());
          } catch (e) {
            this.#host.logger.warn({ err: (e as Error).message, subject }, 'cluster confirmation ignored');
          }
        },
      });
    this.#subs = [
      on(askSubject(this.#host.nodeName), (m) => this.#ask(nc, m as AskMessage)),
      on(answerSubject(this.#host.nodeName), (m) => this.#answered(m as AnswerMessage)),
    ];
  }

  close(): void {
    clearInterval(this.#checker);
    for (const sub of this.#subs) sub.unsubscribe();
    this.#subs = [];
    this.linkDown();
  }
}
