/**
 * One broker's side of the cluster: the `BrokerBus` its `publish` forwards through.
 *
 * - Outbound: `forward` asks the broker's remote interest index (peers.ts) whether any other
 *   node wants the topic, a cached lookup; only then is the message appended to this turn's
 *   batch for its subject (the outbox, cluster.ts). Nothing else happens per message.
 * - Interest: the broker's topic index tells it when a plain filter gains its first subscriber
 *   or loses its last (`TopicIndex.watch`); the link then subscribes on NATS to the filter's
 *   subjects (subjects.ts) and announces the filter to the other nodes. Shared groups are the
 *   dispatcher's (shared-dispatch.ts): one member in the whole cluster per message and group.
 * - Retained: a retained message set or cleared here goes to the cluster's retained stream
 *   (retained-sync.ts), from which every node's retained store is kept.
 * - Client ids: a session opened here is claimed on the bus (`claim`); a claim from another
 *   node closes this node's connection of that client id when it is older (`claimed`), and a
 *   clean start there ends this node's session of that client id [MQTT-3.1.2-4]. A resumed
 *   session (Clean Start 0) is fetched from the node holding it (session-handover.ts).
 * - Inbound: a batch arriving on one of its subjects is decoded (codec.ts) and each message is
 *   routed with `Broker.route`: delivered to this node's matching sessions (its shared groups
 *   left out: the publishing node chose their members), never retained here nor forwarded
 *   again. A message already expired on arrival is dropped and counted.
 */
import type { Broker, BrokerBus, FetchedSession } from '../broker/index.ts';
import type { Message, TopicIndex } from '../router/index.ts';
import type { Routed, SessionGroup } from '../session/index.ts';
import type { SharedDispatch } from './shared-dispatch.ts';
import { brokerPrefix, filterSubjects, topicSubject } from './subjects.ts';

/** What a broker link needs of the cluster. */
export interface LinkHost {
  /**
   * Queues a message for the end of this turn's batch on `subject`, for `nodes` (a QoS 1/2
   * one's acknowledgement waits for them to hold it: delivery-confirms.ts).
   */
  enqueue(subject: string, message: Message, nodes: readonly string[]): void;
  /** This node's sessions on this broker started (`present`) or stopped wanting a subject. */
  subject(link: BrokerLink, subject: string, present: boolean): void;
  /** A client of the broker opened its session on this node at `at` (epoch ms). */
  claim(address: string, clientId: string, at: number, cleanStart: boolean): void;
  /** The will held here for a client of broker `address` may have changed (will-records.ts). */
  willChanged(address: string, clientId: string): void;
  /**
   * Sessions across nodes (session-handover.ts): the session of a client of broker `address`
   * from the node holding it (or the journal), and whether this node refuses persistent
   * sessions now (cut off from NATS: session-fence.ts).
   */
  readonly sessions: {
    fetch(address: string, clientId: string): Promise<FetchedSession | undefined | 'unavailable'> | undefined;
    readonly fenced: boolean;
  };
  /** A plain filter of the broker gained (`present`) or lost its last subscriber on this node. */
  interest(address: string, filter: string, present: boolean): void;
  /** A retained message of the broker was set (`message`) or cleared here (retained-sync.ts). */
  retain(address: string, topic: string, message: Message | undefined): void;
  /** The broker was deleted through this node's API: its retained messages leave the stream. */
  purgeRetained(address: string): void;
  /** The link is closed (its broker deleted). */
  closed(link: BrokerLink): void;
}

const SUBJECT_CACHE = 10_000;
const NONE: readonly string[] = [];

/** The node names of a remote interest match (its keys). */
function nodeNames(matched: readonly { readonly key: string }[]): string[] {
  const names = new Array<string>(matched.length);
  for (let i = 0; i < matched.length; i++) names[i] = matched[i]!.key;
  return names;
}

export class BrokerLink implements BrokerBus {
  readonly broker: Broker;
  /** The broker's address: the tenant prefix on the bus and the key of its interest. */
  readonly address: string;
  readonly #prefix: string;
  readonly #remote: TopicIndex<string, true>;
  readonly #host: LinkHost;
  readonly #shared: SharedDispatch;
  readonly #subjects = new Map<string, string>();
  #closed = false;

  constructor(broker: Broker, remote: TopicIndex<string, true>, host: LinkHost, shared: SharedDispatch) {
    this.broker = broker;
    this.address = broker.address;
    this.#prefix = brokerPrefix(broker.address);
    this.#remote = remote;
    this.#host = host;
    this.#shared = shared;
    broker.index.watch((filter, present) => this.#watched(filter, present));
    for (const filter of broker.index.filters()) this.#watched(filter, true);
  }

  forward(message: Message): boolean {
    const shared = this.#shared.active && this.#shared.forward(message);
    const remote = this.#remote;
    if (remote.size === 0 || this.#closed) return shared;
    const topic = message.topic;
    const nodes = remote.match(topic).subscribers;
    if (nodes.length === 0) return shared;
    let subject = this.#subjects.get(topic);
    if (subject === undefined) {
      subject = topicSubject(this.#prefix, topic);
      if (this.#subjects.size >= SUBJECT_CACHE) this.#subjects.clear();
      this.#subjects.set(topic, subject);
    }
    this.#host.enqueue(subject, message, message.qos > 0 ? nodeNames(nodes) : NONE);
    return true;
  }

  /** Delivers one message from another node to this node's sessions (see the header). */
  deliver(message: Message, now: number): Routed {
    if (message.expired(now)) {
      this.broker.stats.droppedExpired++;
      return 0;
    }
    return this.broker.route(message, false);
  }

  placeShared(group: SessionGroup, message: Message): boolean {
    return this.#shared.place(group, message);
  }

  redeliverShared(group: SessionGroup, message: Message): boolean {
    return this.#shared.redeliver(group, message);
  }

  retained(topic: string, message: Message | undefined): void {
    if (!this.#closed) this.#host.retain(this.address, topic, message);
  }

  claim(clientId: string, cleanStart: boolean): void {
    if (!this.#closed) this.#host.claim(this.address, clientId, Date.now(), cleanStart);
  }

  willChanged(clientId: string): void {
    // Also once closed: the sessions of a deleted broker end after its bus closed, and their
    // records go then (the broker gone, this node holds no will for them).
    this.#host.willChanged(this.address, clientId);
  }

  fetchSession(clientId: string): Promise<FetchedSession | undefined | 'unavailable'> | undefined {
    return this.#closed ? undefined : this.#host.sessions.fetch(this.address, clientId);
  }

  get fenced(): boolean {
    return this.#host.sessions.fenced;
  }

  /**
   * Another node opened a session for `clientId` at `at`: the newest connection wins, as on one
   * node, so a connection here since before then is closed with 0x8E (v3: closed). Equal
   * instants go to the node whose name sorts last, the same answer on both nodes. A session
   * still here then ends (its pending will published, as when a session ends on one node): a
   * clean start discards it [MQTT-3.1.2-4], and after Clean Start 0 the other node asked for it
   * and opened a new one without it (this node did not answer in time), so this copy is stale.
   */
  claimed(clientId: string, at: number, node: string, self: string): void {
    const link = this.broker.sessions.get(clientId)?.link;
    if (link !== undefined) {
      const here = link.describe().connectedAt;
      if (here > at || (here === at && self > node)) return;
      link.disconnect('SESSION_TAKEN_OVER', `session taken over by a connection on node ${node}`);
    }
    const session = this.broker.sessions.get(clientId);
    if (session !== undefined && session.link === undefined) this.broker.endSession(session);
  }

  deleted(): void {
    this.#host.purgeRetained(this.address);
  }

  close(): void {
    if (this.#closed) return;
    this.broker.index.watch(undefined);
    for (const filter of this.broker.index.filters()) this.#watched(filter, false);
    this.#closed = true;
    this.#shared.close();
    this.#host.closed(this);
  }

  #watched(filter: string, present: boolean): void {
    if (this.#closed) return;
    for (const subject of filterSubjects(this.#prefix, filter)) this.#host.subject(this, subject, present);
    this.#host.interest(this.address, filter, present);
  }
}
