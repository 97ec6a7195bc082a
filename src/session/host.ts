/**
 * What a session needs from its surroundings, stated here so that session/ depends on nothing
 * above it: the broker that hosts it (`SessionHost`: its id, limits, message store, counters,
 * subscription index, retained messages and the routing a will or a handed-back shared message
 * takes) and the connection attached to it (`SessionLink`). The Broker class (src/broker/)
 * implements `SessionHost`; a Connection implements `SessionLink`.
 *
 * The index and shared groups hold sessions as `RoutedSession`, the part of a Session the
 * router's results are used through, so this file does not import the Session class.
 */
import type { ClientIdentity } from '../auth/index.ts';
import type { Config } from '../config.ts';
import type { ErrorCode } from '../errors.ts';
import type { PacketLimit, WillMessage } from '../protocol/index.ts';
import type { RetainedStore } from '../retained/index.ts';
import type { Message, PublishOptions, SharedGroup, TopicIndex } from '../router/index.ts';
import type { MessageStore, StoredSubscription } from '../store/index.ts';
import type { TransportKind } from '../transport/index.ts';
import type { LimitsInForce, RateLimitName } from './broker-limits.ts';
import type { InputHold } from './input-holds.ts';

/** A subscription as a session holds it: as stored (the filter with any `$share/...` prefix), plus its parsed share. */
export interface Subscription extends StoredSubscription {
  /** For shared subscriptions: the share name and the inner filter. */
  readonly share: { name: string; filter: string } | undefined;
}

/**
 * What routing a message did, as bits of a number (nothing allocated per message):
 * `ROUTED_WROTE`, it wrote to the message store (an acknowledgement waits for the commit);
 * `ROUTED_MATCHED`, a subscription or a shared group matched its topic; `ROUTED_PENDING`, the
 * fan-out is not finished (split across turns, src/broker/fan-out.ts): whether it wrote is known
 * only when the broker's `whenRouted` says so.
 */
export type Routed = number;
export const ROUTED_WROTE = 1;
export const ROUTED_MATCHED = 2;
export const ROUTED_PENDING = 4;

/** A connection as an operator is shown it (admin API): read at request time, never kept. */
export interface LinkView {
  readonly transport: TransportKind;
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** 3 (MQTT 3.1), 4 (3.1.1) or 5. */
  readonly protocolVersion: number;
  /** The keep alive in force, in seconds: the client's, or the server's when it overrode it; 0 none. */
  readonly keepAlive: number;
  /** Epoch ms when its CONNECT was accepted. */
  readonly connectedAt: number;
}

/** What the session needs from the connection currently attached to it. */
export interface SessionLink {
  readonly clientId: string;
  /** Outbound QoS 1/2 messages allowed in flight. */
  readonly window: number;
  /** True while the socket's unsent bytes exceed the bound, or the server's write budget sheds it. */
  readonly congested: boolean;
  /**
   * While congested, the counter a QoS 0 drop to it moves: its own bound (`--max-write-buffer`),
   * the server's write budget, or the process's overload.
   */
  readonly congestionDrop: 'droppedCongested' | 'droppedWriteBudget' | 'droppedOverload';
  /** Writes a PUBLISH; false when the client's Maximum Packet Size refuses it. */
  sendPublish(message: Message, delivery: PublishOptions): boolean;
  sendPubrel(packetId: number): void;
  /** Closes the connection from the server side (v5: DISCONNECT with the code's reason). */
  disconnect(code: ErrorCode, detail: string): void;
  /** Who the client authenticated as (absent for links that did not authenticate). */
  readonly identity?: ClientIdentity | undefined;
  /** The will an unasked close would release (CONNECT's; undefined once a normal DISCONNECT dropped it). */
  readonly heldWill?: WillMessage | undefined;
  /** The client's protocol level (3, 4, 5). */
  readonly version?: number;
  /** What an operator is shown of this connection. */
  describe(): LinkView;
  /** Stops reading the connection for `reason` (input-holds.ts) until `releaseInput(reason)`. */
  holdInput(reason: InputHold): void;
  releaseInput(reason: InputHold): void;
}

/** A session as the subscription index and shared groups hold it. */
export interface RoutedSession {
  readonly clientId: string;
  /** The attached connection; undefined while the session is offline. */
  readonly link: SessionLink | undefined;
  /**
   * Delivers a routed message given every subscription of this session that matched it.
   * True when that wrote to the message store (the publisher's ack then waits for the commit).
   */
  deliverMatched(message: Message, subs: Subscription[], group?: SessionGroup): boolean;
  /** Its subscriptions by filter (as stored); none once the session has ended. */
  readonly subscriptions: ReadonlyMap<string, Subscription>;
}

/** A shared group of one broker's sessions. */
export type SessionGroup = SharedGroup<RoutedSession, Subscription>;

/**
 * Counters of one broker, plain numbers that the hot path increments and the metrics endpoint
 * reads when scraped (src/admin/metrics.ts); every drop is counted here, never silent.
 */
export interface BrokerStats {
  /** PUBLISH packets received from this broker's clients, by QoS (index 0, 1, 2). */
  readonly received: number[];
  /** PUBLISH packets sent to this broker's clients, by QoS (index 0, 1, 2), re-sends included. */
  readonly sent: number[];
  /** Bytes read from and written to this broker's clients, from their CONNECT on. */
  bytesReceived: number;
  bytesSent: number;
  /** Connections serving a session now (past CONNACK, not yet closed), by transport. */
  readonly connections: Record<TransportKind, number>;
  /** CONNECTs accepted (CONNACK 0x00) since start. */
  connectionsAccepted: number;
  /** CONNECTs refused once this broker was chosen for them, by catalogue code. */
  readonly connectionsRefused: Map<ErrorCode, number>;
  /** CONNECTs refused by this broker's authentication (admission, enhanced AUTH), by catalogue code. */
  readonly authFailures: Map<ErrorCode, number>;
  /** QoS 1/2 deliveries refused by a full session queue. */
  droppedQueueFull: number;
  /** Queued deliveries whose Message Expiry Interval passed before they were sent [MQTT-3.3.2-5]. */
  droppedExpired: number;
  /** Deliveries larger than the receiving client's Maximum Packet Size [MQTT-3.1.2-25]. */
  droppedTooLarge: number;
  /** QoS 0 deliveries to a connection whose unsent bytes exceeded the bound. */
  droppedCongested: number;
  /** QoS 0 deliveries shed from the most congested connections: the server's write budget was spent. */
  droppedWriteBudget: number;
  /** QoS 0 deliveries shed from connections owing a 'drain' while the process was overloaded. */
  droppedOverload: number;
  /** Connections closed for staying over their write buffer bound for `--max-congested-ms`. */
  disconnectedCongested: number;
  /** Times overload protection paused this broker's readers (broker/input-shedding.ts). */
  overloadInputHolds: number;
  /** PUBLISH refused by the publisher's topic ACL. */
  droppedNotAuthorized: number;
  /** PUBLISH refused: its topic name has more levels than `maxTopicLevels`. */
  droppedTopicLevels: number;
  /** QoS 1/2 shared-subscription messages handed from a leaving member to another (section 4.8.2). */
  sharedRedelivered: number;
  sessionsExpired: number;
  /** Retained messages not kept: the broker's retained count or bytes bound was reached. */
  droppedRetainedFull: number;
  /**
   * Packets (for the subscription cap and topic bounds in SUBSCRIBE, filters; for the rates,
   * each throttle or disconnect) refused over a bound, by its name.
   */
  readonly refusedOverLimit: Record<LimitName, number>;
}

/**
 * The bounds (docs/limits.md) a refusal is counted under: the per-packet ones named like their
 * flags, the broker's own (the broker object's `limits`) like their fields there.
 */
export type LimitName =
  | PacketLimit
  | 'max_topic_length'
  | 'max_topic_levels'
  | 'max_subscriptions_per_client'
  | 'max_connections'
  | RateLimitName
  | 'max_retained_messages'
  | 'max_retained_bytes';

/** A broker's counters, all zero. */
export function newBrokerStats(): BrokerStats {
  return {
    received: [0, 0, 0],
    sent: [0, 0, 0],
    bytesReceived: 0,
    bytesSent: 0,
    connections: { tcp: 0, tls: 0, ws: 0, wss: 0, memory: 0 },
    connectionsAccepted: 0,
    connectionsRefused: new Map(),
    authFailures: new Map(),
    droppedQueueFull: 0,
    droppedExpired: 0,
    droppedTooLarge: 0,
    droppedNotAuthorized: 0,
    droppedTopicLevels: 0,
    droppedCongested: 0,
    droppedWriteBudget: 0,
    droppedOverload: 0,
    disconnectedCongested: 0,
    overloadInputHolds: 0,
    sharedRedelivered: 0,
    sessionsExpired: 0,
    droppedRetainedFull: 0,
    refusedOverLimit: {
      max_user_properties: 0,
      max_properties_bytes: 0,
      max_will_bytes: 0,
      max_filters_per_subscribe: 0,
      max_topic_length: 0,
      max_subscriptions_per_client: 0,
      max_topic_levels: 0,
      max_connections: 0,
      max_client_messages_per_second: 0,
      max_client_bytes_per_second: 0,
      max_messages_per_second: 0,
      max_bytes_per_second: 0,
      max_retained_messages: 0,
      max_retained_bytes: 0,
    },
  };
}

/** Connections a broker serves now, over every transport. */
export function connectionsOf(stats: BrokerStats): number {
  const c = stats.connections;
  return c.tcp + c.tls + c.ws + c.wss + c.memory;
}

/** Adds one to `code`'s count. */
export function countCode(counts: Map<ErrorCode, number>, code: ErrorCode): void {
  counts.set(code, (counts.get(code) ?? 0) + 1);
}

/** What a session needs from the broker (tenant) that hosts it. */
export interface SessionHost {
  readonly id: string;
  readonly config: Config;
  /** The broker's limits in force, its own over the server's flags (broker-limits.ts). */
  readonly limits: LimitsInForce;
  /** Where a persistent session writes its changes. */
  readonly store: MessageStore;
  readonly stats: BrokerStats;
  readonly index: TopicIndex<RoutedSession, Subscription>;
  readonly retained: RetainedStore;
  /**
   * The $SYS tree's retained messages (src/broker/sys-tree.ts), current, for a new subscription
   * whose filter starts with `$SYS`; undefined when the broker has no $SYS tree.
   */
  sysRetained(now: number): RetainedStore | undefined;
  /** Routes a message (a will): whether that wrote to the message store, whether anything matched. */
  publish(message: Message): Routed;
  /**
   * The will this node holds for `clientId` may have changed: a connection with a will was
   * accepted, or a will was published, discarded, cancelled, delayed or handed over (a cluster
   * keeps the wills where another node can publish them if this one dies).
   */
  willChanged(clientId: string): void;
  /**
   * Gives a shared-group message this member will not deliver to another member (section
   * 4.8.2); with `connectedOnly`, only to a connected one. False when no member took it.
   */
  redeliverShared(
    message: Message,
    group: SessionGroup,
    from: RoutedSession,
    connectedOnly?: boolean,
  ): boolean;
}
