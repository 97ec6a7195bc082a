/**
 * Shared-group membership across the cluster, and the subjects shared messages cross on.
 * The choice of a member is shared-dispatch.ts's; this file keeps who has members where.
 *
 * - Announcements (`pubsub.c.share`, small JSON): each node says, per broker, how many members
 *   each of its `$share/{name}/{filter}` groups has (`[broker address, share name, filter,
 *   members, connected]`: members 0, the group is gone here; connected, those whose session has
 *   a connection, shared-dispatch.ts), as deltas in the order they happened (sent once per
 *   event-loop turn, applied in order, so the last count wins), and as a whole snapshot
 *   (`reset`) when it (re)connects or another node asks (hello, sync: sent with its interest
 *   snapshot). A node the membership forgets (goodbye, or silent past `PEER_TIMEOUT_MS`) is
 *   forgotten here with all its groups, so no message is chosen for it afterwards.
 * - Remote groups: one `RemoteGroup` per broker, share name and filter, holding the other nodes
 *   with members and their counts; per broker a `TopicIndex` keyed by these objects answers
 *   "which remote groups match this topic" with its cached match.
 * - Shared messages: one chosen for a member on node N crosses on
 *   `pubsub.s.<N>.<hops>.<start>.<broker>.<share name>.<filter>.<topic levels…>` (every token
 *   escaped as subjects.ts does; `start` is `-` unless the pick is hashed) in the data plane's
 *   batches (codec.ts; the topic tokens keep one topic per batch). Only N subscribes to
 *   `pubsub.s.<N>.>`, so exactly one node gets each, once.
 */
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { Broker } from '../broker/index.ts';
import { type Message, TopicIndex } from '../router/index.ts';
import { decodeBatch } from './codec.ts';
import { type DispatchHost, RemoteGroup, SharedDispatch } from './shared-dispatch.ts';
import { escapeLevel, ROOT, unescapeLevel } from './subjects.ts';

const SHARE = `${ROOT}.c.share`;
/** Groups per control message, so a snapshot of many stays under NATS's max_payload. */
const CHUNK = 2000;

/** `[broker address, share name, filter, members, connected members]`. */
type GroupCount = [string, string, string, number, number];

/** Group member counts (`pubsub.c.share`): deltas, or a snapshot's parts (`reset` on the first). */
export interface ShareMessage {
  readonly node: string;
  readonly reset?: boolean;
  readonly groups: readonly GroupCount[];
}

/** The cluster's counters this part adds to (a `ClusterStats`). */
export interface ShareStats {
  received: number;
  batchesReceived: number;
  dropped: number;
  malformed: number;
}

export interface ShareHost {
  readonly nodeName: string;
  readonly stats: ShareStats;
  readonly logger: Logger;
  /** The NATS connection while the link is up. */
  connection(): NatsConnection | undefined;
  /** The data plane's outbox (cluster.ts), for a message going to `nodes`. */
  enqueue(subject: string, message: Message, nodes: readonly string[]): void;
}

const groupKey = (shareName: string, filter: string): string => `${shareName}/${filter}`;
const nodeHead = (node: string): string => `${ROOT}.s.${escapeLevel(node)}.`;

export class SharedGroups {
  readonly #host: ShareHost;
  /** This node's groups and their member counts, per broker address (the snapshot). */
  readonly #local = new Map<string, Map<string, GroupCount>>();
  #out: GroupCount[] = [];
  #scheduled = false;
  /** Other nodes' groups per broker address and group key, and their index per address. */
  readonly #remote = new Map<string, Map<string, RemoteGroup>>();
  readonly #indexes = new Map<string, TopicIndex<RemoteGroup, true>>();
  /** The remote groups each node has members in, with their broker address (to forget it). */
  readonly #byNode = new Map<string, Map<RemoteGroup, string>>();
  readonly #dispatchers = new Map<string, SharedDispatch>();
  #subs: Subscription[] = [];

  constructor(host: ShareHost) {
    this.#host = host;
  }

  /** A broker's dispatcher; its groups' membership is announced from now on. */
  open(broker: Broker, link: { readonly linkUp: boolean }): SharedDispatch {
    const address = broker.address;
    const host: DispatchHost = {
      get linkUp() {
        return link.linkUp;
      },
      enqueue: (subject, message, nodes) => this.#host.enqueue(subject, message, nodes),
      lost: () => {
        this.#host.stats.dropped++;
      },
      closed: (dispatch) => {
        broker.index.watchGroups(undefined);
        for (const [shareName, filter] of this.#local.get(address)?.values() ?? [])
          this.#changed(address, shareName, filter, 0, 0);
        if (this.#dispatchers.get(address) === dispatch) this.#dispatchers.delete(address);
      },
    };
    const dispatch = new SharedDispatch(broker, this.#index(address), host);
    this.#dispatchers.set(address, dispatch);
    broker.index.watchGroups((shareName, filter, members, connected) =>
      this.#changed(address, shareName, filter, members, connected),
    );
    for (const group of broker.index.groups())
      this.#changed(address, group.shareName, group.filter, group.size, group.connected);
    return dispatch;
  }

  /** At every (re)connection: the control and shared-message subscriptions (once per connection). */
  linkUp(nc: NatsConnection): void {
    if (this.#subs.length > 0 && !this.#subs[0]!.isClosed()) return;
    const log = this.#host.logger;
    this.#subs = [
      nc.subscribe(SHARE, {
        callback: (err, msg) => {
          if (err !== null) return;
          try {
            this.#onShare(msg.json() as ShareMessage);
          } catch (e) {
            log.warn({ err: (e as Error).message, subject: SHARE }, 'cluster control message ignored');
          }
        },
      }),
      nc.subscribe(`${nodeHead(this.#host.nodeName)}>`, {
        callback: (err, msg) => {
          if (err === null) this.#onShared(msg.subject, msg.data);
        },
      }),
    ];
  }

  /** This node's whole membership, replacing what the others knew of it (hello, sync, reconnection). */
  introduce(nc: NatsConnection): void {
    this.#out = [];
    const all: GroupCount[] = [];
    for (const groups of this.#local.values()) all.push(...groups.values());
    this.#publish(nc, all, true);
  }

  /**
   * Members of this node's groups (no `node`), or of `node`'s as announced to this node, and how
   * many of them are connected (GET /cluster).
   */
  members(node?: string): { members: number; connected: number } {
    let members = 0;
    let connected = 0;
    if (node === undefined) {
      for (const groups of this.#local.values())
        for (const count of groups.values()) {
          members += count[3];
          connected += count[4];
        }
    } else {
      for (const group of this.#byNode.get(node)?.keys() ?? []) {
        const i = group.nodes.indexOf(node);
        members += group.counts[i] ?? 0;
        connected += group.live[i] ?? 0;
      }
    }
    return { members, connected };
  }

  /** Forgets a node's groups (it left, or was silent too long). */
  forget(node: string): void {
    const groups = this.#byNode.get(node);
    if (groups === undefined) return;
    this.#byNode.delete(node);
    for (const [group, address] of groups) this.#setRemote(address, group, node, 0);
  }

  #index(address: string): TopicIndex<RemoteGroup, true> {
    let index = this.#indexes.get(address);
    if (index === undefined) {
      index = new TopicIndex<RemoteGroup, true>();
      this.#indexes.set(address, index);
    }
    return index;
  }

  // ---- this node's groups ----

  #changed(address: string, shareName: string, filter: string, members: number, connected: number): void {
    let groups = this.#local.get(address);
    if (groups === undefined) this.#local.set(address, (groups = new Map()));
    const key = groupKey(shareName, filter);
    const count: GroupCount = [address, shareName, filter, members, connected];
    if (members > 0) groups.set(key, count);
    else {
      groups.delete(key);
      if (groups.size === 0) this.#local.delete(address);
    }
    if (this.#host.connection() === undefined) return; // the snapshot at reconnection says it
    this.#out.push(count);
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#scheduled = false;
    const out = this.#out;
    this.#out = [];
    const nc = this.#host.connection();
    if (nc === undefined || out.length === 0) return;
    try {
      this.#publish(nc, out, false);
    } catch (err) {
      this.#host.logger.warn({ err: (err as Error).message }, 'cluster control message not sent');
    }
  }

  #publish(nc: NatsConnection, groups: readonly GroupCount[], reset: boolean): void {
    for (let i = 0; i < Math.max(groups.length, reset ? 1 : 0); i += CHUNK) {
      const m: ShareMessage = {
        node: this.#host.nodeName,
        ...(reset && i === 0 ? { reset: true } : {}),
        groups: groups.slice(i, i + CHUNK),
      };
      nc.publish(SHARE, JSON.stringify(m));
    }
  }

  // ---- the other nodes' groups ----

  #onShare(m: ShareMessage): void {
    if (typeof m.node !== 'string' || m.node === this.#host.nodeName || !Array.isArray(m.groups)) return;
    if (m.reset === true) this.forget(m.node);
    for (const entry of m.groups) {
      const [address, shareName, filter, members, connected] = entry;
      if (typeof address !== 'string' || typeof shareName !== 'string' || typeof filter !== 'string')
        continue;
      if (typeof members !== 'number') continue;
      let groups = this.#remote.get(address);
      if (groups === undefined) this.#remote.set(address, (groups = new Map()));
      const key = groupKey(shareName, filter);
      let group = groups.get(key);
      if (group === undefined) {
        if (members <= 0) continue;
        const tail = `.${escapeLevel(address)}.${escapeLevel(shareName)}.${escapeLevel(filter)}`;
        group = new RemoteGroup(shareName, filter, tail);
        groups.set(key, group);
        this.#index(address).add(filter, group, true);
      }
      // A node that does not say how many are connected (an older version): all of them.
      const live = typeof connected === 'number' ? Math.min(connected, members) : members;
      this.#setRemote(address, group, m.node, members, live);
    }
  }

  #setRemote(address: string, group: RemoteGroup, node: string, members: number, connected = 0): void {
    group.set(node, members, connected, nodeHead(node));
    let mine = this.#byNode.get(node);
    if (members > 0) {
      if (mine === undefined) this.#byNode.set(node, (mine = new Map()));
      mine.set(group, address);
      return;
    }
    mine?.delete(group);
    if (group.total > 0) return;
    this.#remote.get(address)?.delete(groupKey(group.shareName, group.filter));
    this.#indexes.get(address)?.remove(group.filter, group);
  }

  /** A batch of shared messages chosen for this node (the subject says for which group). */
  #onShared(subject: string, data: Uint8Array): void {
    const stats = this.#host.stats;
    try {
      const tokens = subject.split('.');
      const hops = Number(tokens[3]);
      const start = tokens[4] === '-' ? undefined : Number(tokens[4]);
      const address = unescapeLevel(tokens[5]!);
      const shareName = unescapeLevel(tokens[6]!);
      const filter = unescapeLevel(tokens[7]!);
      const dispatch = this.#dispatchers.get(address);
      stats.batchesReceived++;
      decodeBatch(data, (message) => {
        stats.received++;
        if (dispatch === undefined) stats.dropped++;
        else dispatch.arrived(shareName, filter, message, hops, start);
      });
    } catch (e) {
      stats.malformed++;
      this.#host.logger.warn({ err: (e as Error).message, subject }, 'cluster batch not decoded');
    }
  }
}
