/**
 * What this node knows of the others: each peer's announcement (name, uptime, connections,
 * link) and its interest, the MQTT filters its sessions subscribe to, per broker.
 *
 * Interest is kept as MQTT filters in one `TopicIndex` per broker address whose keys are node
 * names, so "does another node want this topic" is the index's cached `match` (the MQTT rules
 * exactly, `$` topics included), asked before a message is queued: a message no other node
 * wants is never sent. A peer's interest arrives as deltas in the order it sent them (one NATS
 * connection keeps a publisher's order) and as whole snapshots that replace what was known
 * (`reset`): sent when a node (re)connects and when another asks (hello, sync). A peer not
 * heard from for `PEER_TIMEOUT_MS`, or that says goodbye, is forgotten with its interest.
 */
import { TopicIndex } from '../router/index.ts';

/** A node's announcement (`pubsub.c.node`), as GET /cluster shows it. */
export interface NodeAnnouncement {
  readonly name: string;
  /** Epoch ms when the node started. */
  readonly startedAt: number;
  /** MQTT connections serving a session on the node now. */
  readonly connections: number;
  /** The node's admin API (`http://host:port`), when it has one. */
  readonly apiUrl: string | undefined;
}

/** Interest deltas and snapshots (`pubsub.c.interest`): filters per broker address. */
export interface InterestMessage {
  readonly node: string;
  /** A snapshot's first part: forget what was known of this node's interest first. */
  readonly reset?: boolean;
  readonly add?: readonly (readonly [string, string])[];
  readonly del?: readonly (readonly [string, string])[];
}

export const ANNOUNCE_MS = 2000;
export const PEER_TIMEOUT_MS = 3 * ANNOUNCE_MS;

interface Peer {
  announcement: NodeAnnouncement | undefined;
  seenAt: number;
  /** Filters by broker address. */
  readonly filters: Map<string, Set<string>>;
}

export class Peers {
  readonly #peers = new Map<string, Peer>();
  /** Remote interest per broker address (node names as keys). */
  readonly #remote = new Map<string, TopicIndex<string, true>>();

  /** The remote interest index of a broker (made empty when first asked; kept for its address). */
  remoteIndex(address: string): TopicIndex<string, true> {
    let index = this.#remote.get(address);
    if (index === undefined) {
      index = new TopicIndex<string, true>();
      this.#remote.set(address, index);
    }
    return index;
  }

  /** True when the node was not known (the caller asks it for its interest). */
  announced(a: NodeAnnouncement, now: number): boolean {
    const peer = this.#peers.get(a.name);
    if (peer !== undefined) {
      const isNew = peer.announcement === undefined;
      peer.announcement = a;
      peer.seenAt = now;
      return isNew;
    }
    this.#peers.set(a.name, { announcement: a, seenAt: now, filters: new Map() });
    return true;
  }

  interest(m: InterestMessage, now: number): void {
    let peer = this.#peers.get(m.node);
    if (peer === undefined) {
      peer = { announcement: undefined, seenAt: now, filters: new Map() };
      this.#peers.set(m.node, peer);
    }
    peer.seenAt = now;
    if (m.reset === true) this.#dropInterest(m.node, peer);
    for (const [address, filter] of m.add ?? []) {
      let set = peer.filters.get(address);
      if (set === undefined) peer.filters.set(address, (set = new Set()));
      set.add(filter);
      this.remoteIndex(address).add(filter, m.node, true);
    }
    for (const [address, filter] of m.del ?? []) {
      if (peer.filters.get(address)?.delete(filter) === true)
        this.remoteIndex(address).remove(filter, m.node);
    }
  }

  /** Forgets a node and its interest (goodbye, or silent past the timeout). */
  forget(name: string): boolean {
    const peer = this.#peers.get(name);
    if (peer === undefined) return false;
    this.#dropInterest(name, peer);
    this.#peers.delete(name);
    return true;
  }

  /** Counts every peer as heard from now (the link is back: they get time to answer hello). */
  touchAll(now: number): void {
    for (const peer of this.#peers.values()) peer.seenAt = now;
  }

  /** Forgets the nodes not heard from since `now - PEER_TIMEOUT_MS`; returns their names. */
  expire(now: number): string[] {
    const gone: string[] = [];
    for (const [name, peer] of this.#peers) if (now - peer.seenAt > PEER_TIMEOUT_MS) gone.push(name);
    for (const name of gone) this.forget(name);
    return gone;
  }

  /** The peers known (heard from in the last `PEER_TIMEOUT_MS`). */
  names(): string[] {
    return [...this.#peers.keys()];
  }

  /** Whether `node`'s interest, as known here, holds `filter` on broker `address`. */
  wants(node: string, address: string, filter: string): boolean {
    return this.#peers.get(node)?.filters.get(address)?.has(filter) === true;
  }

  /** The known peers: their last announcement and how many filters they are known to want. */
  *list(): Iterable<{
    name: string;
    announcement: NodeAnnouncement | undefined;
    filters: number;
    seenAt: number;
  }> {
    for (const [name, peer] of this.#peers) {
      let filters = 0;
      for (const set of peer.filters.values()) filters += set.size;
      yield { name, announcement: peer.announcement, filters, seenAt: peer.seenAt };
    }
  }

  #dropInterest(name: string, peer: Peer): void {
    for (const [address, set] of peer.filters) {
      const index = this.#remote.get(address);
      if (index !== undefined) for (const filter of set) index.remove(filter, name);
    }
    peer.filters.clear();
  }
}
