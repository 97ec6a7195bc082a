/**
 * One broker's shared subscriptions across the cluster: which member, on which node, gets a
 * message of a `$share/{name}/{filter}` group (section 4.8.2).
 *
 * The node a message is published on chooses, once per message and group, for the whole
 * cluster: every member counts once, wherever it is. It draws a slot in [0, members here +
 * members elsewhere) by the broker's strategy (round-robin: the group's turn; random; a hash of
 * the publisher's client id), the slots being this node's members first, then each other node's
 * in the order they joined. A slot here: a member here gets it as on one node (the broker picks
 * it). A slot on node N: the message crosses to N alone (shared-groups.ts), and N's broker picks
 * one of its members (for a hashed pick, from the slot's offset in N's range, so one publisher
 * stays on one member). So each message reaches exactly one member in the cluster per group.
 * As on one node, a connected member is preferred: while some member anywhere is connected,
 * only connected members count (each node announces both counts); a member whose session has
 * no connection gets a message (its session queues it) only when no member anywhere has one.
 *
 * Invariants:
 * - A message from another node never reaches a group through the plain data plane (the
 *   broker routes it with `shared` false): only the node chosen for it delivers it to a group.
 * - A message whose chosen node has no member left when it arrives (a race with a leaving
 *   member) is chosen again among the other nodes, at most `MAX_HOPS` times, then dropped and
 *   counted; so is a member's hand-back (`redeliver`) when no other member is on its node.
 * - While this node's link is down, or for a `$SYS` topic (each node's own), no other node is
 *   chosen: the members here get the messages. A node the membership forgot (silent, goodbye)
 *   has no members here any more.
 * - Nothing is asked per message unless a shared group matched it (the broker asks `place`
 *   only for its matching groups; `forward` only when some other node has a group at all).
 */
import type { Broker } from '../broker/index.ts';
import { hashString } from '../broker/index.ts';
import type { Message, TopicIndex } from '../router/index.ts';
import { ROUTED_MATCHED, type SessionGroup } from '../session/index.ts';
import { topicSubject } from './subjects.ts';

/** Times a message is chosen again after its node had no member left for it. */
export const MAX_HOPS = 3;

/** Topics whose subject tail is kept (as the plain data plane keeps its subjects). */
const TAIL_CACHE = 10_000;

/** One remote group (`$share/{shareName}/{filter}` of one broker): the other nodes with members. */
export class RemoteGroup {
  readonly shareName: string;
  readonly filter: string;
  /** Nodes with members, in the order they were first heard of, their member counts and connected ones. */
  readonly nodes: string[] = [];
  readonly counts: number[] = [];
  readonly live: number[] = [];
  /** Each node's subject head, `pubsub.s.<node>.` (shared-groups.ts). */
  readonly heads: string[] = [];
  /** The subject's group tokens, `.<broker>.<share name>.<filter>` (escaped). */
  readonly tail: string;
  /** Members on other nodes in all, and how many of them are connected. */
  total = 0;
  liveTotal = 0;
  /** The round-robin turn over every member of the group in the cluster. */
  turn = 0;

  constructor(shareName: string, filter: string, tail: string) {
    this.shareName = shareName;
    this.filter = filter;
    this.tail = tail;
  }

  /** Sets a node's member counts (members 0: none any more). */
  set(node: string, members: number, connected: number, head: string): void {
    const i = this.nodes.indexOf(node);
    if (i < 0 && members > 0) {
      this.nodes.push(node);
      this.counts.push(members);
      this.live.push(connected);
      this.heads.push(head);
    } else if (i >= 0 && members > 0) {
      this.counts[i] = members;
      this.live[i] = connected;
    } else if (i >= 0) {
      this.nodes.splice(i, 1);
      this.counts.splice(i, 1);
      this.live.splice(i, 1);
      this.heads.splice(i, 1);
    }
    this.total = 0;
    this.liveTotal = 0;
    for (let j = 0; j < this.counts.length; j++) {
      this.total += this.counts[j]!;
      this.liveTotal += this.live[j]!;
    }
  }
}

/** What a dispatcher needs of the cluster. */
export interface DispatchHost {
  /** Whether the NATS link is up (no other node is chosen while it is down). */
  readonly linkUp: boolean;
  /** Queues a message for this turn's batch on `subject` (the data plane's outbox), for `nodes`. */
  enqueue(subject: string, message: Message, nodes: readonly string[]): void;
  /** A shared message no member anywhere could take (counted with the cluster's drops). */
  lost(): void;
  /** The broker is closing: its groups are withdrawn. */
  closed(dispatch: SharedDispatch): void;
}

export class SharedDispatch {
  readonly broker: Broker;
  readonly #remote: TopicIndex<RemoteGroup, true>;
  readonly #host: DispatchHost;
  readonly #strategy: Broker['config']['sharedSubscriptionStrategy'];
  readonly #tails = new Map<string, string>();
  #closed = false;

  constructor(broker: Broker, remote: TopicIndex<RemoteGroup, true>, host: DispatchHost) {
    this.broker = broker;
    this.#remote = remote;
    this.#host = host;
    this.#strategy = broker.config.sharedSubscriptionStrategy;
  }

  /** Whether another node has members of some group of this broker (else `forward` is not asked). */
  get active(): boolean {
    return this.#remote.size > 0 && !this.#closed;
  }

  /**
   * A group with members here matched a message published here: true when its slot fell on
   * another node and the message went there; false, a member here gets it.
   */
  place(group: SessionGroup, message: Message): boolean {
    if (!this.active || !this.#host.linkUp || message.topic.startsWith('$SYS')) return false;
    const remote = this.#remoteGroup(group.shareName, group.filter, message.topic);
    if (remote === undefined) return false;
    // Connected members only, while there is one anywhere (see the header).
    const live = group.connected + remote.liveTotal > 0;
    const here = live ? group.connected : group.size;
    const slot = this.#slot(remote, here + (live ? remote.liveTotal : remote.total), message) - here;
    if (slot < 0) return false;
    this.#send(remote, slot, message, 0, live);
    return true;
  }

  /**
   * A message published here, for the groups with members on other nodes only (those with
   * members here too were placed by `place` as the broker routed it). True when one was sent.
   */
  forward(message: Message): boolean {
    if (!this.#host.linkUp) return false;
    const topic = message.topic;
    const remote = this.#remote.match(topic).subscribers;
    let sent = false;
    for (let i = 0; i < remote.length; i++) {
      const group = remote[i]!.key;
      if (this.#localGroup(group.shareName, group.filter, topic) !== undefined) continue;
      this.#choose(group, message, 0);
      sent = true;
    }
    return sent;
  }

  /** A member here handed a message back and no other member here takes it (section 4.8.2). */
  redeliver(group: SessionGroup, message: Message): boolean {
    return this.#elsewhere(group.shareName, group.filter, message, 0);
  }

  /**
   * A message another node chose this node for (`start`: the slot's offset here, for a hashed
   * pick). A member here gets it; with none left, another node is chosen (see the header).
   */
  arrived(shareName: string, filter: string, message: Message, hops: number, start?: number): void {
    if (this.#closed) return this.#host.lost();
    if (message.expired(Date.now())) {
      this.broker.stats.droppedExpired++;
      return;
    }
    const group = this.#localGroup(shareName, filter, message.topic);
    if (group !== undefined && (this.broker.deliverToGroup(group, message, start) & ROUTED_MATCHED) !== 0)
      return;
    if (hops >= MAX_HOPS || !this.#elsewhere(shareName, filter, message, hops + 1)) this.#host.lost();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#host.closed(this);
  }

  #elsewhere(shareName: string, filter: string, message: Message, hops: number): boolean {
    if (!this.active || !this.#host.linkUp) return false;
    const remote = this.#remoteGroup(shareName, filter, message.topic);
    if (remote === undefined) return false;
    this.#choose(remote, message, hops);
    return true;
  }

  /** A slot in [0, size) by the broker's strategy (the turn is the group's, cluster-wide). */
  #slot(remote: RemoteGroup, size: number, message: Message): number {
    if (this.#strategy === 'random') return Math.floor(Math.random() * size);
    if (this.#strategy === 'publisher-hash') return hashString(message.senderId ?? '') % size;
    remote.turn = (remote.turn + 1) % 0x4000_0000;
    return remote.turn % size;
  }

  /** Sends the message to a member on another node: a connected one while there is one. */
  #choose(remote: RemoteGroup, message: Message, hops: number): void {
    const live = remote.liveTotal > 0;
    this.#send(
      remote,
      this.#slot(remote, live ? remote.liveTotal : remote.total, message),
      message,
      hops,
      live,
    );
  }

  /**
   * Sends the message to the node holding `slot`, counting each node's connected members
   * (`live`, 0 ≤ slot < remote.liveTotal) or all of them (0 ≤ slot < remote.total).
   */
  #send(remote: RemoteGroup, slot: number, message: Message, hops: number, live: boolean): void {
    const counts = live ? remote.live : remote.counts;
    let i = 0;
    while (i < counts.length - 1 && slot >= counts[i]!) slot -= counts[i++]!;
    const start = this.#strategy === 'publisher-hash' ? slot : '-';
    const topic = message.topic;
    let tail = this.#tails.get(topic);
    if (tail === undefined) {
      tail = topicSubject('', topic);
      if (this.#tails.size >= TAIL_CACHE) this.#tails.clear();
      this.#tails.set(topic, tail);
    }
    this.#host.enqueue(`${remote.heads[i]}${hops}.${start}${remote.tail}${tail}`, message, [
      remote.nodes[i]!,
    ]);
  }

  /** The remote group `$share/{shareName}/{filter}` among those matching `topic` (a cached match). */
  #remoteGroup(shareName: string, filter: string, topic: string): RemoteGroup | undefined {
    const matched = this.#remote.match(topic).subscribers;
    for (let i = 0; i < matched.length; i++) {
      const group = matched[i]!.key;
      if (group.shareName === shareName && group.filter === filter) return group;
    }
    return undefined;
  }

  /** This node's group `$share/{shareName}/{filter}`, when it has members (a cached match). */
  #localGroup(shareName: string, filter: string, topic: string): SessionGroup | undefined {
    const groups = this.broker.index.match(topic).groups;
    for (let i = 0; i < groups.length; i++) {
      const group = groups[i]!;
      if (group.shareName === shareName && group.filter === filter) return group;
    }
    return undefined;
  }
}
