/**
 * A broker is a tenant: its own subscription index, retained messages, sessions and client-id
 * space. Nothing crosses brokers; one server process hosts many (src/tenancy/ keeps one Broker
 * per broker row and routes each connection to it).
 *
 * It implements what session/ asks of it (`BrokerPort`, `SessionHost`): sessions and their
 * connections reach it through those interfaces only, never through this class. A client's
 * PUBLISH reaches `publish` through the broker's `PublishGate` (ACL, hook, acknowledgement).
 *
 * `publish` is the one entry for every message, from sockets, wills or in-process publishers,
 * and says whether it wrote to the message store (the publisher's ack then waits for the commit)
 * and whether anything matched (v5 publishers are told 0x10 No matching subscribers when not):
 * retained store first, then one delivery per matching session (overlapping subscriptions
 * merged) and one member per matching shared group, chosen by the configured strategy
 * (round-robin, random, or a hash of the publisher's client id), a connected member first.
 * A member that leaves hands its undelivered shared messages back (`redeliverShared`).
 * A match larger than one slice (fan-out.ts) is delivered across event-loop turns: `publish`
 * then says `ROUTED_PENDING`, later messages queue behind it, and `whenRouted` tells the final
 * bits when its last delivery is made.
 *
 * Durable state goes to the broker's MessageStore as it changes: retained messages here,
 * persistent sessions in Session. At construction the broker reloads what the store holds:
 * retained messages (expired ones dropped), then every session, then each session's will and
 * expiry clock: a will whose delay passed while the server was down is published and a
 * session whose expiry passed is ended, once every session is back to receive them.
 */
import type { Logger } from 'pino';
import { authenticatorsFromConfig, type EnhancedAuthenticator } from '../auth/index.ts';
import type { Config } from '../config.ts';
import type { ErrorCode } from '../errors.ts';
import type { BrokerHooks } from '../hooks/index.ts';
import { PacketTraces } from '../observability/index.ts';
import { RetainedStore } from '../retained/index.ts';
import { Message, TopicIndex } from '../router/index.ts';
import {
  type BrokerPort,
  type BrokerStats,
  inputWork,
  type LimitsInForce,
  limitsInForce,
  newBrokerStats,
  PublishGate,
  ROUTED_MATCHED,
  ROUTED_WROTE,
  type Routed,
  type RoutedSession,
  Session,
  type SessionGroup,
  type Subscription,
} from '../session/index.ts';
import {
  type BrokerLimits,
  MemoryMessageStore,
  type MessageStore,
  type StoredSession,
} from '../store/index.ts';
import type { BrokerBus } from './bus.ts';
import { FAN_OUT_SLICE, FanOut } from './fan-out.ts';
import * as moves from './session-moves.ts';
import { type SysTicking, SysTree } from './sys-tree.ts';

export class Broker implements BrokerPort, SysTicking {
  readonly id: string;
  /** `<broker>.<namespace>`, for logs and client events; tenancy sets it (the id until then). */
  address: string;
  readonly config: Config;
  readonly index = new TopicIndex<RoutedSession, Subscription>();
  readonly retained = new RetainedStore();
  readonly sessions = new Map<string, Session>();
  readonly stats: BrokerStats = newBrokerStats();
  /** Where retained messages and persistent sessions are written. */
  readonly store: MessageStore;
  /** Enhanced authentication methods offered to this broker's clients, by method name (section 4.12). */
  readonly authenticators: Map<string, EnhancedAuthenticator>;
  /** Every client PUBLISH goes through it: ACL, hook, route, acknowledgement (publish-gate.ts). */
  readonly gate: PublishGate = new PublishGate(this);
  /** The packet traces open on this broker (observability/packet-trace.ts). */
  readonly traces = new PacketTraces();
  readonly #strategy: Config['sharedSubscriptionStrategy'];
  /**
   * The limits in force: the server's flags until tenancy applies the broker's own
   * (`setLimits`). One object, changed in place, so that what holds it (session queues) follows.
   */
  readonly limits: LimitsInForce;
  /** Fan-outs split across turns, and what routes behind them (fan-out.ts). */
  readonly #fanOut = new FanOut(
    this.index,
    (group, message) => this.#deliverShared(group, message),
    (err, message) =>
      this.log?.error(
        { err, broker: this.address, topic: message.topic.slice(0, 64) },
        'internal error delivering a split fan-out; that delivery was skipped',
      ),
  );

  /** Set once the tenant is deleted: nothing more is routed or stored. */
  closed = false;
  /** Cluster mode only: where `publish` forwards messages other nodes want (src/cluster). */
  bus: BrokerBus | undefined;
  /** The broker's on-publish hook (tenancy sets it); PUBLISH from clients goes through it. */
  hooks: BrokerHooks | undefined;
  /** Where the broker reports an internal error off any connection's path (tenancy sets it). */
  log: Logger | undefined;
  /** Epoch ms when this process opened the broker (its counters then all zero): $SYS uptime. */
  readonly openedAt = Date.now();
  /** The $SYS tree (sys-tree.ts), made when first needed; dropped when turned off. */
  #sys: SysTree | undefined;
  #sysTopics = true;

  constructor(
    id: string,
    config: Config,
    store: MessageStore = new MemoryMessageStore(),
    authenticators = authenticatorsFromConfig(config),
  ) {
    this.id = id;
    this.address = id;
    this.config = config;
    this.store = store;
    this.authenticators = authenticators;
    this.#strategy = config.sharedSubscriptionStrategy;
    this.limits = limitsInForce(config, {});
    this.#restore();
  }

  /** Reloads retained messages and persistent sessions from the store (see the header). */
  #restore(): void {
    const state = this.store.load(this.id);
    const now = Date.now();
    for (const stored of state.retained) {
      if (stored.expiresAt !== undefined && now > stored.expiresAt)
        this.store.deleteRetained(this.id, stored.topic);
      else this.retained.apply(Message.fromStored(stored));
    }
    const restored: Session[] = [];
    for (const stored of state.sessions) {
      const session = new Session(stored.clientId, this);
      session.restore(stored);
      this.sessions.set(stored.clientId, session);
      restored.push(session);
    }
    for (let i = 0; i < restored.length; i++) {
      const session = restored[i]!;
      const will = state.sessions[i]!.will;
      if (will === undefined) continue;
      if (will.publishAt <= now) this.publish(Message.fromStored(will.message));
      else session.delayWill(Message.fromStored(will.message), (will.publishAt - now) / 1000);
    }
    for (let i = 0; i < restored.length; i++) {
      const session = restored[i]!;
      if (!session.resumeExpiry(state.sessions[i]!.expiresAt, now, () => this.expireSession(session)))
        this.expireSession(session);
    }
  }

  /**
   * The tenant is deleted: every connected client gets DISCONNECT 0x98 (administrative action),
   * every session, subscription, pending will and retained message is dropped, and later
   * publishes (a will of a closing connection) go nowhere.
   */
  close(): void {
    this.closed = true;
    this.bus?.close();
    this.traces.endAll('broker deleted');
    for (const session of [...this.sessions.values()]) {
      session.link?.disconnect('ADMINISTRATIVE_ACTION', 'broker deleted');
      this.endSession(session);
    }
    this.#fanOut.clear();
    this.retained.clear();
    this.store.deleteBroker(this.id);
  }

  /**
   * Routes a message to every matching subscription and applies it to the retained store.
   * Says, as bits, whether its acknowledgement waits for the store's commit (`ROUTED_WROTE`: it
   * wrote to the store, or crossed to another node at QoS 1/2) and whether a subscription or
   * shared group matched (`ROUTED_MATCHED`: v5 publishers are told 0x10 when none did).
   */
  publish(message: Message): Routed {
    if (this.closed) return 0;
    const wrote = message.retain && this.#retain(message); // [MQTT-3.3.1-5]
    const routed = this.route(message) | (wrote ? ROUTED_WROTE : 0);
    if (this.bus?.forward(message) !== true) return routed;
    return routed | ROUTED_MATCHED | (message.qos > 0 ? ROUTED_WROTE : 0); // acked once held there
  }

  /**
   * Delivers a message to every matching subscription on this node without applying it to the
   * retained store or forwarding it (`publish` does both; the $SYS tree keeps its own; messages
   * from other nodes come in here). Bits as `publish`'s. `shared` false: the shared groups
   * are left out (a message from another node: the publishing node chose its groups' members,
   * src/cluster/shared-dispatch.ts).
   */
  route(message: Message, shared = true): Routed {
    if (this.closed) return 0;
    let wrote = false;
    let match = this.index.match(message.topic);
    if (!shared && match.groups.length > 0) match = { subscribers: match.subscribers, groups: [] };
    const { subscribers, groups } = match;
    // [MQTT-4.6.0-6]: behind a split fan-out, every later message queues (fan-out.ts). Queued
    // deliveries are made in the fan-out's own turns, a slice each: not the publisher's read budget.
    if (this.#fanOut.pending || subscribers.length + groups.length > FAN_OUT_SLICE)
      return this.#fanOut.add(message, match);
    inputWork.deliveries += subscribers.length + groups.length; // the publisher's read budget
    for (let i = 0; i < subscribers.length; i++) {
      const s = subscribers[i]!;
      if (s.key.deliverMatched(message, s.values)) wrote = true;
    }
    for (let i = 0; i < groups.length; i++) {
      if (this.#deliverShared(groups[i]!, message)) wrote = true;
    }
    return (wrote ? ROUTED_WROTE : 0) | (subscribers.length + groups.length > 0 ? ROUTED_MATCHED : 0);
  }

  /**
   * After `publish` or `route` said `ROUTED_PENDING`: `done` gets that message's final bits once
   * its last delivery is made, `drained` runs once no fan-out is pending on this broker. Neither
   * runs if the broker is deleted first.
   */
  whenRouted(done: (routed: Routed) => void, drained: () => void): void {
    this.#fanOut.whenRouted(done, drained);
  }

  /**
   * Delivers to one member of a shared group, picked now; true when that wrote to the store.
   * In a cluster the bus may give it to a member on another node instead (`placeShared`).
   */
  #deliverShared(group: SessionGroup, message: Message): boolean {
    if (this.bus?.placeShared(group, message) === true) return message.qos > 0; // confirmed by that node
    return (this.deliverToGroup(group, message) & ROUTED_WROTE) !== 0;
  }

  /**
   * Delivers to one member of a shared group on this node, picked now by the strategy (`start`:
   * where a hashed pick begins, given by the node that chose this one). `ROUTED_MATCHED` when a
   * member took it (0: the group has no member here), with `ROUTED_WROTE` when that wrote to the store.
   */
  deliverToGroup(group: SessionGroup, message: Message, start?: number): Routed {
    const picked = this.#pickMember(group, message, undefined, start);
    if (picked === undefined) return 0;
    return ROUTED_MATCHED | (picked[0].deliverMatched(message, [picked[1]], group) ? ROUTED_WROTE : 0);
  }

  /**
   * Stores or (empty payload) deletes the topic's retained message [MQTT-3.3.1-6], [MQTT-3.3.1-7],
   * within the broker's bounds: a new topic beyond the count or bytes bound is not retained
   * (counted); a replacement within the bytes bound always is. True when it wrote to the store.
   */
  #retain(message: Message): boolean {
    if (message.payload.length === 0) {
      this.bus?.retained(message.topic, undefined); // cleared on every node, held here or not
      return this.#dropRetained(message.topic);
    }
    const current = this.retained.get(message.topic);
    const bytes = this.retained.bytes - (current?.heldBytes ?? 0) + message.heldBytes;
    const overCount = current === undefined && this.retained.size >= this.limits.maxRetainedMessages;
    if (overCount || bytes > this.limits.maxRetainedBytes) {
      this.stats.droppedRetainedFull++;
      this.stats.refusedOverLimit[overCount ? 'max_retained_messages' : 'max_retained_bytes']++;
      return false;
    }
    this.retained.apply(message);
    this.store.putRetained(this.id, message);
    this.bus?.retained(message.topic, message);
    return true;
  }

  /**
   * One member of a shared group for a message [MQTT-4.8.2-4]: a connected one when there is
   * one, else any (its session queues the message). `except` leaves out a member handing back.
   */
  #pickMember(
    group: SessionGroup,
    message: Message,
    except: RoutedSession | undefined,
    start?: number,
  ): [RoutedSession, Subscription] | undefined {
    start ??=
      this.#strategy === 'random'
        ? Math.floor(Math.random() * group.size)
        : this.#strategy === 'publisher-hash'
          ? hashString(message.senderId ?? '')
          : undefined;
    return (
      group.pick((s) => s !== except && s.link !== undefined, start) ?? group.pick((s) => s !== except, start)
    );
  }

  /**
   * A shared-group message its member will not deliver (the member left the group or its
   * session ended) goes to another member of the group, if any (section 4.8.2); with
   * `connectedOnly`, only to a connected one; in a cluster, with no other member here, to a
   * member on another node (the bus's `redeliverShared`). False when no member took it.
   */
  redeliverShared(
    message: Message,
    group: SessionGroup,
    from: RoutedSession,
    connectedOnly = false,
  ): boolean {
    const picked = connectedOnly
      ? group.pick((s) => s !== from && s.link !== undefined)
      : this.#pickMember(group, message, from);
    if (picked === undefined && this.bus?.redeliverShared(group, message) !== true) return false;
    this.stats.sharedRedelivered++;
    picked?.[0].deliverMatched(message, [picked[1]], group);
    return true;
  }

  /**
   * Closes the connection serving `clientId` with a server-side reason: v5 clients get
   * DISCONNECT with its reason code (e.g. ADMINISTRATIVE_ACTION 0x98, QUOTA_EXCEEDED 0x97)
   * [MQTT-4.13.1-1]; the will is published as for any server close. False when not connected.
   */
  disconnectClient(clientId: string, code: ErrorCode, detail: string): boolean {
    const link = this.sessions.get(clientId)?.link;
    if (link === undefined) return false;
    link.disconnect(code, detail);
    return true;
  }

  /**
   * An administrative disconnect: the client gets DISCONNECT 0x98 (v5; v3 a close) and its will
   * is published as for any server close; with `discardSession` its session then ends too
   * (a will still delayed is published now [MQTT-3.1.2-8]), connected or offline.
   * Both false when there was nothing to act on: not connected, and no session to discard.
   */
  kick(clientId: string, discardSession: boolean): { disconnected: boolean; discarded: boolean } {
    const disconnected = this.disconnectClient(
      clientId,
      'ADMINISTRATIVE_ACTION',
      'disconnected by the admin API',
    );
    const session = this.sessions.get(clientId);
    if (!discardSession || session === undefined) return { disconnected, discarded: false };
    this.endSession(session);
    return { disconnected, discarded: true };
  }

  /**
   * Sessions whose client id starts with `prefix`, in the order they were created: up to
   * `limit` of them from the `skip`th on, and how many match in all (a walk over client ids
   * only; nothing is built for the sessions outside the page).
   */
  findSessions(prefix: string, skip: number, limit: number): { sessions: Session[]; total: number } {
    const sessions: Session[] = [];
    let total = 0;
    for (const [clientId, session] of this.sessions) {
      if (!clientId.startsWith(prefix)) continue;
      if (total >= skip && sessions.length < limit) sessions.push(session);
      total++;
    }
    return { sessions, total };
  }

  /**
   * Deletes a topic's retained message, and from the store; false when there was none. The admin
   * API calls it directly: deleting through `publish` would deliver an empty message to subscribers.
   */
  deleteRetained(topic: string): boolean {
    if (!this.#dropRetained(topic)) return false;
    this.bus?.retained(topic, undefined);
    return true;
  }

  #dropRetained(topic: string): boolean {
    if (!this.retained.delete(topic)) return false;
    this.store.deleteRetained(this.id, topic);
    return true;
  }

  /**
   * The session for a connecting client: a clean start discards any existing one
   * [MQTT-3.1.2-4]; otherwise an existing one is resumed [MQTT-3.1.2-5]. The caller has
   * already detached a connection that held it (takeover); in cluster mode the other nodes
   * are told to close theirs (the session itself stays where it is: docs/cluster.md).
   */
  openSession(clientId: string, cleanStart: boolean): { session: Session; present: boolean } {
    this.bus?.claim(clientId, cleanStart); // a connection of this client id on another node is taken over
    const existing = this.sessions.get(clientId);
    if (existing !== undefined) {
      if (!cleanStart) return { session: existing, present: true };
      this.endSession(existing);
    }
    const session = new Session(clientId, this);
    this.sessions.set(clientId, session);
    return { session, present: false };
  }

  /**
   * Another cluster node is opening this client's session (CONNECT with Clean Start 0 there):
   * its connection here closes (0x8E) and the session leaves whole (session-moves.ts).
   */
  handOverSession(clientId: string, node: string): moves.SessionLeaving | undefined {
    return moves.handOver(this, clientId, node);
  }

  get fenced(): boolean {
    return this.bus?.fenced === true;
  }

  fetchSession(clientId: string): Promise<boolean> | undefined {
    return this.bus?.fetchSession(clientId)?.then((fetched) => {
      if (fetched === 'unavailable') return false;
      if (fetched !== undefined && !this.closed) moves.adopt(this, fetched.session, fetched.move);
      return true;
    });
  }

  /** A session another node handed over, for a client connecting here (session-moves.ts). */
  adoptSession(stored: StoredSession, move?: string): void {
    moves.adopt(this, stored, move);
  }

  /** The node a session came from sent its tail (session-moves.ts `endMove`). */
  endMove(clientId: string, move: string, tail: readonly Message[]): moves.MoveEnded | undefined {
    const session = this.sessions.get(clientId);
    return session === undefined ? undefined : moves.endMove(session, move, tail);
  }

  /** The will this node holds for `clientId`, if any (src/cluster/will-records.ts). */
  heldWill(clientId: string): moves.HeldWill | undefined {
    return moves.heldWill(this.sessions.get(clientId));
  }

  willChanged(clientId: string): void {
    this.bus?.willChanged(clientId);
  }

  /** Ends a session now: publishes its pending will, removes its subscriptions and state. */
  endSession(session: Session): void {
    if (this.sessions.get(session.clientId) === session) this.sessions.delete(session.clientId);
    session.end();
    this.willChanged(session.clientId);
  }

  /**
   * Applies the broker's own limits (the broker object's `limits`) over the server's flags, at
   * once for what comes next: every client's next PUBLISH meets the new rates, the next
   * subscription, connection, retained message and queued message the new caps. Limits lowered
   * under what is held already (subscriptions, retained messages, connections) drop nothing held.
   */
  setLimits(own: BrokerLimits): void {
    Object.assign(this.limits, limitsInForce(this.config, own));
  }

  /**
   * Whether this broker has a $SYS tree: the server's `--sys-interval` is not 0 and the broker's
   * own setting (tenancy sets it from the broker's `sys_topics`) allows it. Turning it off drops
   * the tree's retained messages.
   */
  get sysTopics(): boolean {
    return this.#sysTopics && this.config.sysInterval > 0 && !this.closed;
  }

  set sysTopics(on: boolean) {
    this.#sysTopics = on;
    if (!on) this.#sys = undefined;
  }

  #sysTree(): SysTree | undefined {
    if (!this.sysTopics) return undefined;
    this.#sys ??= new SysTree(this, this.openedAt);
    return this.#sys;
  }

  /** Once per `--sys-interval`: the $SYS tree is refreshed and routed while a filter could read it. */
  tickSys(now: number): void {
    if (this.index.hasFirstLevel('$SYS')) this.#sysTree()?.refresh(now, true);
  }

  /**
   * The $SYS tree's retained messages for a new subscription (undefined when there is no tree),
   * refreshed first, unrouted, when no tick kept them current (sys-tree.ts).
   */
  sysRetained(now: number): RetainedStore | undefined {
    const tree = this.#sysTree();
    if (tree === undefined) return undefined;
    if (now - tree.refreshedAt >= 2 * this.config.sysInterval * 1000) tree.refresh(now, false);
    return tree.retained;
  }

  /** A session's expiry interval passed while it was disconnected [MQTT-4.1.0-2]. */
  expireSession(session: Session): void {
    if (session.link !== undefined) return;
    this.stats.sessionsExpired++;
    this.endSession(session);
  }
}

/** FNV-1a over UTF-16 units: a stable, cheap spread of client ids over group members (and nodes). */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
