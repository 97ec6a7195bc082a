/**
 * The node in a cluster (`--cluster`): the NATS link, the data plane and the membership.
 *
 * Data plane: every message some other node wants (broker-link.ts asks the remote interest)
 * is appended to a batch per subject (batch-outbox.ts, codec.ts) and the batches go out at the
 * end of the event-loop turn (setImmediate), many messages per NATS message; a large batch goes
 * at once, none outgrows max_payload. Order per publisher and topic: one subject, one batch
 * stream, one NATS connection. While the link is down each message that would have crossed
 * is dropped and counted (`stats.dropped`), QoS 1/2 included (core NATS is at most once). A QoS
 * 1/2 message's acknowledgement waits until the nodes it crossed to hold it (delivery-confirms.ts);
 * incoming batches are batch-inbox.ts's.
 *
 * Control subjects (small JSON, never per message): `pubsub.c.node` (each node's
 * announcement, every `ANNOUNCE_MS`), `pubsub.c.interest` (filter deltas and snapshots,
 * peers.ts), `pubsub.c.hello` (a node that (re)connects asks everyone for their interest and
 * announcement), `pubsub.c.sync.<node>` (asks one node for them), `pubsub.c.bye` (a node
 * leaving), `pubsub.c.claim` (the client ids whose sessions opened on a node this turn: the
 * other nodes close their older connection of each, 0x8E, so a client id is connected once per
 * broker in the cluster). Joining and leaving nodes are logged once each.
 *
 * Retained messages (retained-sync.ts), sessions moving between nodes (session-handover.ts) and
 * the wills of a node that dies (will-records.ts) have modules of their own: this class tells
 * them of the link, the brokers, the claims and the nodes gone.
 */

import { randomInt } from 'node:crypto';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { Broker } from '../broker/index.ts';
import type { Config } from '../config.ts';
import type { Message } from '../router/index.ts';
import type { JournaledMessageStore } from '../store/index.ts';
import type { Tenancy } from '../tenancy/index.ts';
import { BatchInbox } from './batch-inbox.ts';
import { BatchOutbox, type ClusterStats, zeroStats } from './batch-outbox.ts';
import { BrokerLink, type LinkHost } from './broker-link.ts';
import { ControlSync } from './control-sync.ts';
import { DefaultBrokerWait } from './default-broker-wait.ts';
import { DeliveryConfirms } from './delivery-confirms.ts';
import { NatsLink } from './link.ts';
import { type ClusterNode, nodeList } from './node-list.ts';
import { ANNOUNCE_MS, type InterestMessage, type NodeAnnouncement, Peers } from './peers.ts';
import { RetainedSync } from './retained-sync.ts';
import { SessionHandover } from './session-handover.ts';
import { SharedGroups } from './shared-groups.ts';
import { escapeLevel, ROOT } from './subjects.ts';
import { WillRecords } from './will-records.ts';

/** Filters (or claims) per control message, so a snapshot of many stays under max_payload. */
const CHUNK = 2000;

const NODE = `${ROOT}.c.node`;
const INTEREST = `${ROOT}.c.interest`;
const HELLO = `${ROOT}.c.hello`;
const BYE = `${ROOT}.c.bye`;
const CLAIM = `${ROOT}.c.claim`;

/** Sessions opened on a node in one turn (`pubsub.c.claim`): broker address, client id, epoch ms, 1 for a clean start. */
interface ClaimMessage {
  readonly node: string;
  readonly claims: readonly (readonly [string, string, number, number?])[];
}
const syncSubject = (node: string): string => `${ROOT}.c.sync.${escapeLevel(node)}`;

export interface ClusterOptions {
  readonly config: Config;
  readonly logger: Logger;
  readonly nodeName: string;
  readonly tenancy: Tenancy;
  /** MQTT connections serving a session on this node now. */
  readonly connections: () => number;
  /** The admin API's base URL once listening. */
  readonly apiUrl: () => string | undefined;
  /** The node's message store, whose session writes the cluster journals (session-journal.ts). */
  readonly store?: JournaledMessageStore | undefined;
}

interface SubjectEntry {
  refs: number;
  readonly link: BrokerLink;
  sub: Subscription | undefined;
}

export class Cluster implements LinkHost {
  readonly stats: ClusterStats = zeroStats();
  readonly nodeName: string;
  readonly startedAt = Date.now();
  readonly #options: ClusterOptions;
  readonly #log: Logger;
  readonly #link: NatsLink;
  readonly #peers = new Peers();
  /** Retained messages cluster-wide (retained-sync.ts). */
  readonly retained: RetainedSync;
  /** Persistent sessions moving to the node their client reconnects to (session-handover.ts). */
  readonly sessions: SessionHandover;
  /** Each open broker's link, by broker address. */
  readonly #links = new Map<string, BrokerLink>();
  readonly #subjects = new Map<string, SubjectEntry>();
  /** This node's filters per broker address (the snapshot it sends). */
  readonly #filters = new Map<string, Set<string>>();
  /** Filters whose presence changed this turn, per address: the final state goes (remove + add = add). */
  #interestOut = new Map<string, Set<string>>();
  #claimsOut: [string, string, number, number][] = [];
  #scheduled = false;
  /** This process's sender number in batch headers (codec.ts), and its last batch number. */
  readonly #sender = randomInt(1, 0xffff_ffff);
  readonly #outbox: BatchOutbox;
  readonly #inbox: BatchInbox;
  #announcer: NodeJS.Timeout | undefined;
  #control: Subscription[] = [];
  #sameNameWarned = false;
  /** Readiness waits for the cluster's default broker after this node's gave way (`ready`). */
  readonly #defaultWait: DefaultBrokerWait;
  /** Wills kept where a surviving node publishes them if this one dies (will-records.ts). */
  readonly wills: WillRecords;
  /** Shared-group membership across nodes and the shared messages' subjects (shared-groups.ts). */
  readonly #shared: SharedGroups;
  /** The shared control plane (control-sync.ts): the admin API commits its changes through it. */
  readonly controlPlane: ControlSync;
  /** QoS 1/2 messages' acknowledgements wait for the nodes they crossed to (delivery-confirms.ts). */
  readonly confirms: DeliveryConfirms;

  constructor(options: ClusterOptions) {
    this.#options = options;
    this.nodeName = options.nodeName;
    this.#log = options.logger;
    const { config } = options;
    // --cluster-replicas 0 (the default): 3 on a NATS cluster of three or more, else 1.
    const replicas = () => config.clusterReplicas || (this.#link.serverCount >= 3 ? 3 : 1);
    const replica = options.tenancy.controlReplica();
    this.controlPlane = new ControlSync({
      replica,
      replicas,
      logger: options.logger,
      // The retained stream is read once this node's brokers are the cluster's.
      onSynced: (nc) => {
        this.#defaultWait.synced();
        void this.retained.up(nc);
      },
    });
    this.#link = new NatsLink({
      servers: config.cluster,
      credsFile: config.clusterCreds,
      tlsCaFile: config.clusterTlsCa,
      nodeName: options.nodeName,
      logger: options.logger,
      onUp: (nc) => this.#linkUp(nc),
      onDown: () => {
        this.controlPlane.linkDown();
        this.retained.down();
        this.sessions.linkDown();
        this.confirms.linkDown();
      },
    });
    this.#shared = new SharedGroups({
      nodeName: this.nodeName,
      stats: this.stats,
      logger: this.#log,
      connection: () => this.#link.connection,
      enqueue: (subject, message, nodes) => this.enqueue(subject, message, nodes),
    });
    this.retained = new RetainedSync(options.logger, this.#sender, replicas);
    this.#defaultWait = new DefaultBrokerWait(() => options.tenancy.defaultTenant() !== undefined);
    const broker = (address: string) => this.#links.get(address)?.broker;
    const brokers = () => [...this.#links.values()].map((link) => link.broker);
    const common = { nodeName: this.nodeName, logger: this.#log, broker, brokers };
    const incarnation = String(this.#sender); // drawn at start: a restart draws another
    this.wills = new WillRecords({ ...common, replicas, incarnation });
    const fenced = (up: boolean) => this.retained.fenced(up); // the fence fails its waits too
    const journal = { store: options.store, replicas, batchMs: config.storeBatchMs, fenced };
    this.sessions = new SessionHandover({
      ...common,
      journal,
      peers: this.#peers,
      connection: () => this.#link.connection,
      maxPayload: () => this.#outbox.maxPayload,
    });
    this.#outbox = new BatchOutbox(this.#sender, this.#link, this.stats, this.#log);
    const store = options.store;
    this.confirms = new DeliveryConfirms({
      ...common,
      afterJournal: (fn) => this.sessions.afterJournal(fn),
      afterMoves: (fn) => this.sessions.tails.afterMoves(fn),
    });
    store?.gate(this.confirms, this.retained.tickets);
    this.#inbox = new BatchInbox(this.stats, this.#log, this.confirms);
  }

  /** Whether the NATS link is up (/readyz). */
  get linkUp(): boolean {
    return this.#link.up;
  }

  /**
   * Ready (/readyz): the link is up, the node holds the cluster's control plane, its retained
   * messages caught up with the cluster's, it serves a default broker if it served one before the
   * sync (default-broker-wait.ts), and it serves persistent sessions (its copies checked).
   */
  get ready(): boolean {
    const caughtUp = this.controlPlane.synced && this.retained.loaded && this.#defaultWait.settled;
    return this.#link.up && caughtUp && !this.sessions.opening;
  }

  /** Times the link was lost since start. */
  get linkLosses(): number {
    return this.#link.losses;
  }

  /** Gives every broker its bus and starts connecting (returns at once). */
  start(): void {
    this.#options.tenancy.attachBus((broker) => this.#open(broker));
    this.#link.start();
    this.#announcer = setInterval(() => this.#tick(), ANNOUNCE_MS);
    this.#announcer.unref();
  }

  async close(): Promise<void> {
    clearInterval(this.#announcer);
    this.controlPlane.linkDown();
    this.retained.close();
    this.sessions.close();
    this.#options.store?.gate();
    this.confirms.close();
    await this.wills.close(); // a stopping node's wills are not published by the others
    const nc = this.#link.connection;
    if (nc !== undefined) {
      this.#flush();
      nc.publish(BYE, JSON.stringify({ node: this.nodeName }));
    }
    await this.#link.close();
  }

  /** Every node known: this one first, then its peers by name (node-list.ts). */
  nodes(now = Date.now()): ClusterNode[] {
    const filters = [...this.#filters.values()].reduce((n, set) => n + set.size, 0);
    return nodeList(
      {
        self: { announcement: this.#announcement(), linkUp: this.linkUp, filters },
        peers: this.#peers.list(),
        shared: (node) => this.#shared.members(node),
      },
      now,
    );
  }

  #announcement(): NodeAnnouncement {
    return {
      name: this.nodeName,
      startedAt: this.startedAt,
      connections: this.#options.connections(),
      apiUrl: this.#options.apiUrl(),
    };
  }

  #open(broker: Broker): BrokerLink {
    const shared = this.#shared.open(broker, this);
    const link = new BrokerLink(broker, this.#peers.remoteIndex(broker.address), this, shared);
    this.#links.set(broker.address, link);
    this.retained.opened(broker);
    return link;
  }

  // ---- LinkHost: what broker links call ----

  enqueue(subject: string, message: Message, nodes: readonly string[]): void {
    const sent = this.#outbox.add(subject, message);
    if (message.qos > 0) this.confirms.need(nodes, sent);
    this.#schedule();
  }

  subject(link: BrokerLink, subject: string, present: boolean): void {
    let entry = this.#subjects.get(subject);
    if (present) {
      if (entry === undefined) {
        entry = { refs: 0, link, sub: undefined };
        this.#subjects.set(subject, entry);
        const nc = this.#link.connection;
        if (nc !== undefined) entry.sub = this.#inbox.subscribe(nc, subject, link);
      }
      entry.refs++;
      return;
    }
    if (entry === undefined || --entry.refs > 0) return;
    this.#subjects.delete(subject);
    entry.sub?.unsubscribe();
  }

  interest(address: string, filter: string, present: boolean): void {
    let set = this.#filters.get(address);
    if (present) {
      if (set === undefined) this.#filters.set(address, (set = new Set()));
      set.add(filter);
    } else {
      set?.delete(filter);
      if (set?.size === 0) this.#filters.delete(address);
    }
    let touched = this.#interestOut.get(address);
    if (touched === undefined) this.#interestOut.set(address, (touched = new Set()));
    touched.add(filter);
    this.#schedule();
  }

  willChanged(address: string, clientId: string): void {
    this.wills.changed(address, clientId);
  }

  claim(address: string, clientId: string, at: number, cleanStart: boolean): void {
    if (this.#link.connection === undefined) return; // nobody to tell: the link is down
    this.wills.connected(address, clientId, this.nodeName, cleanStart);
    this.#claimsOut.push([address, clientId, at, cleanStart ? 1 : 0]);
    this.#schedule();
  }

  retain(address: string, topic: string, message: Message | undefined): void {
    this.retained.write(address, topic, message);
  }

  purgeRetained(address: string): void {
    this.retained.purge(address);
  }

  closed(link: BrokerLink): void {
    if (this.#links.get(link.address) === link) this.#links.delete(link.address);
    this.retained.closed(link.broker);
  }

  #onClaims(m: ClaimMessage): void {
    if (m.node === this.nodeName) return;
    for (const [address, clientId, at, clean] of m.claims) {
      this.wills.connected(address, clientId, m.node, clean === 1); // settles a will armed for a node gone
      this.#links.get(address)?.claimed(clientId, at, m.node, this.nodeName);
    }
  }

  // ---- sending ----

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => this.#flush());
  }

  /** Sends this turn's interest changes and claims, then its batches. */
  #flush(): void {
    this.#scheduled = false;
    const touched = this.#interestOut;
    const claims = this.#claimsOut;
    if (touched.size + claims.length > 0) {
      this.#interestOut = new Map();
      this.#claimsOut = [];
      const add: [string, string][] = [];
      const del: [string, string][] = [];
      for (const [address, filters] of touched) {
        const now = this.#filters.get(address);
        for (const filter of filters) (now?.has(filter) === true ? add : del).push([address, filter]);
      }
      // While down, nothing is sent: the snapshot sent on reconnection carries the interest.
      const nc = this.#link.connection;
      try {
        if (nc !== undefined && add.length + del.length > 0) this.#publishInterest(nc, add, del, false);
        for (let i = 0; nc !== undefined && i < claims.length; i += CHUNK) {
          const message: ClaimMessage = { node: this.nodeName, claims: claims.slice(i, i + CHUNK) };
          nc.publish(CLAIM, JSON.stringify(message));
        }
      } catch (err) {
        this.#log.warn({ err: (err as Error).message }, 'cluster control message not sent');
      }
    }
    this.#outbox.flush();
    this.confirms.flush(this.#link.connection);
  }

  #publishInterest(
    nc: NatsConnection,
    add: readonly [string, string][],
    del: readonly [string, string][],
    reset: boolean,
  ): void {
    let first = true;
    for (let i = 0; i < Math.max(add.length, del.length, 1); i += CHUNK) {
      const m: InterestMessage = {
        node: this.nodeName,
        ...(reset && first ? { reset: true } : {}),
        add: add.slice(i, i + CHUNK),
        del: del.slice(i, i + CHUNK),
      };
      first = false;
      nc.publish(INTEREST, JSON.stringify(m));
    }
  }

  /** This node's whole interest, replacing what the others knew of it. */
  #publishSnapshot(nc: NatsConnection): void {
    const add: [string, string][] = [];
    for (const [address, set] of this.#filters) for (const filter of set) add.push([address, filter]);
    this.#publishInterest(nc, add, [], true);
  }

  #announce(nc: NatsConnection): void {
    nc.publish(NODE, JSON.stringify(this.#announcement()));
  }

  // ---- receiving ----

  /** At every (re)connection: data subscriptions, control subscriptions, then say who we are. */
  #linkUp(nc: NatsConnection): void {
    this.#defaultWait.linkUp();
    void this.wills.linkUp(nc);
    this.#outbox.maxPayload = nc.info?.max_payload ?? this.#outbox.maxPayload;
    for (const [subject, entry] of this.#subjects)
      if (entry.sub === undefined || entry.sub.isClosed())
        entry.sub = this.#inbox.subscribe(nc, subject, entry.link);
    if (this.#control.length === 0 || this.#control[0]!.isClosed()) {
      const on = (subject: string, handle: (data: unknown) => void) =>
        nc.subscribe(subject, {
          callback: (err, msg) => {
            if (err !== null) return;
            try {
              handle(msg.data.length === 0 ? undefined : msg.json());
            } catch (e) {
              this.#log.warn({ err: (e as Error).message, subject }, 'cluster control message ignored');
            }
          },
        });
      this.#control = [
        on(NODE, (a) => this.#onAnnouncement(nc, a as NodeAnnouncement)),
        on(INTEREST, (m) => this.#peers.interest(m as InterestMessage, Date.now())),
        on(HELLO, () => this.#introduce(nc)),
        on(syncSubject(this.nodeName), () => this.#introduce(nc)),
        on(BYE, (m) => this.#forget((m as { node: string }).node, 'left')),
        on(CLAIM, (m) => this.#onClaims(m as ClaimMessage)),
      ];
    }
    this.#shared.linkUp(nc);
    this.sessions.linkUp(nc);
    this.confirms.linkUp(nc);
    this.#interestOut = new Map(); // the snapshot below says it all
    this.#peers.touchAll(Date.now());
    this.#introduce(nc);
    nc.publish(HELLO, JSON.stringify({ node: this.nodeName }));
    this.controlPlane.linkUp(nc);
  }

  #introduce(nc: NatsConnection): void {
    if (this.#link.connection === undefined) return;
    this.#announce(nc);
    this.#publishSnapshot(nc);
    this.#shared.introduce(nc);
  }

  #onAnnouncement(nc: NatsConnection, a: NodeAnnouncement): void {
    if (typeof a.name !== 'string') return;
    if (a.name === this.nodeName) {
      // noEcho: never our own announcement, so another node has our name.
      if (!this.#sameNameWarned)
        this.#log.warn(
          { event: 'cluster_duplicate_name', peer: a.name, peerApi: a.apiUrl },
          `another node calls itself ${a.name}: give every node its own --node-name`,
        );
      this.#sameNameWarned = true;
      return;
    }
    if (this.#peers.announced(a, Date.now())) {
      this.#log.info({ event: 'cluster_node_joined', peer: a.name }, `cluster node ${a.name} joined`);
      nc.publish(syncSubject(a.name), '');
    }
  }

  #forget(name: string, why: string): void {
    if (name === this.nodeName || !this.#peers.forget(name)) return this.#shared.forget(name);
    this.#gone(name);
    this.#log.info({ event: 'cluster_node_left', peer: name, why }, `cluster node ${name} left (${why})`);
  }

  /** A node the membership forgot: what waited for it fails, its sessions are adopted. */
  #gone(name: string): void {
    this.#shared.forget(name);
    this.confirms.nodeGone(name);
    this.sessions.orphans.nodeGone();
  }

  #tick(): void {
    const nc = this.#link.connection;
    if (nc === undefined) return; // peers are kept while we cannot hear them
    try {
      this.#announce(nc);
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'cluster announcement not sent');
    }
    this.wills.prune(Date.now());
    for (const name of this.#peers.expire(Date.now())) {
      this.#gone(name);
      this.wills.nodeGone(name); // gone without a goodbye: its clients' wills are published here
      this.#log.info(
        { event: 'cluster_node_left', peer: name, why: 'silent' },
        `cluster node ${name} left (silent)`,
      );
    }
  }
}
