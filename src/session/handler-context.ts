/**
 * The contracts around a connection, as types only: `PacketContext`, what the dispatcher and
 * the packet handlers may use of the connection a packet came on, and `ConnectionContext`, what
 * a connection needs from the server that accepted it.
 *
 * Invariants:
 * - The dispatcher and every handlers/*.ts file import these types, never connection.ts: the
 *   handler table sits below the connection that drives it (connection.ts → dispatcher.ts →
 *   handlers/ → this file), with no import pointing back.
 * - `Connection` (connection.ts) is the one implementation; a handler reaches the session, the
 *   broker and the socket only through these members.
 */
import type { Logger } from 'pino';
import type { AuthExchange, ClientIdentity, FailureLimiter } from '../auth/index.ts';
import type { Config } from '../config.ts';
import type { ErrorCode } from '../errors.ts';
import type { LogSampler } from '../observability/index.ts';
import type {
  AuthPacket,
  ConnectPacket,
  Packet,
  ProtocolVersion,
  PubackPacket,
  SubackPacket,
  UnsubackPacket,
  WillMessage,
} from '../protocol/index.ts';
import type { ConnectionInfo } from '../transport/index.ts';
import type { BrokerPort as Broker } from './broker-port.ts';
import type { ConnectionGuard } from './connection-guard.ts';
import type { BrokerStats, SessionLink } from './host.ts';
import type { InputHold } from './input-holds.ts';
import type { OrderedAcks } from './ordered-acks.ts';
import type { Session } from './session.ts';
import type { WriteBudget } from './write-budget.ts';

/**
 * 'awaiting-connect' (CONNECT timeout armed) → ['authenticating': an enhanced authentication
 * exchange, still under the CONNECT timeout] → 'connected' (CONNACK sent) → 'closed'.
 */
export type ConnectionState = 'awaiting-connect' | 'authenticating' | 'connected' | 'closed';

/** An enhanced authentication in progress: at CONNECT, or a re-authentication (section 4.12). */
export interface PendingAuth {
  method: string;
  exchange: AuthExchange;
  /** A step is being computed (asynchronous authenticator): the client must wait for our AUTH. */
  busy: boolean;
  /** What to do once the exchange succeeds. */
  onSuccess: (data: Buffer | undefined) => void;
}

/** A CONNECT the server refuses, with the broker it was for when one was chosen (its counters). */
export interface Refused {
  refuse: ErrorCode;
  detail: string;
  broker?: Broker | undefined;
  /** Milliseconds to hold the refusal (the brute-force limiter slows the address down). */
  delayMs?: number | undefined;
}

/** A CONNECT the server admits: its broker, who the client is, and a client id it decided. */
export interface Admitted {
  broker: Broker;
  identity: ClientIdentity;
  /** Set when the credentials fix the client id (a token's `sub`, a certificate's CN). */
  clientId: string | undefined;
}

/** What a connection needs from the server that accepted it. */
export interface ConnectionContext {
  readonly config: Config;
  readonly logger: Logger;
  /** True once the server is closing: wills are not published for its own disconnects. */
  readonly shuttingDown: boolean;
  /** Process-wide CONNECT admission: connection caps, overload, client-id connect rate. */
  readonly guard: ConnectionGuard;
  /** The rate of connect, disconnect, takeover and refused-connect log lines (`--client-log-rate`). */
  readonly clientLog: LogSampler;
  /** Unsent bytes of every connection of the server together (`--max-total-write-buffer`). */
  readonly writeBudget: WriteBudget;
  /** Failed authentications by source address (brute-force limiter), shared with admission and the API. */
  readonly authFailures: FailureLimiter;
  /**
   * The broker (tenant) a CONNECT belongs to, or why it is refused (unknown broker, anonymous
   * access off, credentials the broker does not accept).
   */
  brokerFor(connection: PacketContext, connect: ConnectPacket): Admitted | Refused;
  /** CONNECT accepted: the connection no longer counts as awaiting CONNECT. */
  admitted(connection: PacketContext): void;
  /** The socket has closed and the connection released. */
  closed(connection: PacketContext): void;
}

export interface AcceptOptions {
  broker: Broker;
  session: Session;
  keepalive: number;
  window: number;
  /** The client's Topic Alias Maximum (v5 CONNECT; 0 when absent) [MQTT-3.1.2-27]. */
  clientTopicAliasMaximum: number;
  will: WillMessage | undefined;
}

/**
 * The connection a packet came on, as the dispatcher and the handlers see it; a SessionLink,
 * as the CONNECT handler attaches it to the session it opens.
 */
export interface PacketContext extends SessionLink {
  readonly ctx: ConnectionContext;
  readonly info: ConnectionInfo;
  readonly config: Config;
  /** A logger bound to this connection (remote address, transport, client id). */
  readonly log: Logger;
  readonly closed: boolean;
  state: ConnectionState;
  version: ProtocolVersion;
  clientId: string;
  /** `<broker>.<namespace>` once CONNECT named a broker (`routeTo`, before `accept`), for the log. */
  readonly brokerAddress: string | undefined;
  /** Set by `accept`: the broker and session the connection serves. */
  broker: Broker | undefined;
  session: Session | undefined;
  /** PUBACK/PUBREC in PUBLISH order while some wait for an on-publish hook. */
  readonly acks: OrderedAcks;
  /** The counters of the broker the connection was routed to, once it was (`routeTo`). */
  readonly stats: BrokerStats | undefined;
  /** CONNECT admission named `broker`: from now on the figures count there, the log names it. */
  routeTo(broker: Broker, connect?: ConnectPacket): void;
  /** Inbound topic aliases (v5), alias → topic, this connection only [MQTT-3.3.2-7]. */
  readonly topicAliases: Map<number, string>;
  /** v5 Request Problem Information (default 1): 0 keeps Reason Strings off acks [MQTT-3.1.2-29]. */
  problemInformation: boolean;
  /** The client's Maximum Packet Size (v5 CONNECT; unbounded when absent), set at CONNECT [MQTT-3.1.2-24]. */
  clientMaximumPacketSize: number;
  /** The Authentication Method the client authenticated with (v5 enhanced authentication). */
  authMethod: string | undefined;
  /** Who the client authenticated as at CONNECT (tenancy admission). */
  identity: ClientIdentity | undefined;
  /** The authenticated principal, when an authenticator named one. */
  username: string | undefined;
  /** The AUTH exchange in progress, if any. */
  auth: PendingAuth | undefined;

  send(packet: Packet): void;
  /** Writes bytes already encoded for this client (see encodeForClient). */
  write(bytes: Buffer): void;
  /** Writes `bytes`, `packet` encoded for this client, where a packet trace sees it. */
  writePacket(packet: Packet, bytes: Buffer): void;
  /**
   * `packet` encoded within the client's Maximum Packet Size, without its droppable properties
   * (Reason String, User Property, Response Information) if need be; undefined if it cannot fit.
   */
  encodeForClient(packet: Packet): Buffer | undefined;
  /** An acknowledgement with a v5 Reason String, when the client accepts one. */
  sendWithReason(packet: PubackPacket | SubackPacket | UnsubackPacket | AuthPacket, reason: string): void;
  /** An acknowledgement vouching for stored state: after the commit when `wrote`. */
  sendDurable(packet: PubackPacket, wrote: boolean): void;
  /** A refusing PUBACK/PUBREC, behind any acknowledgement still waiting for a commit. */
  sendRefusal(packet: PubackPacket, reason: string): void;
  /**
   * Spends one inbound PUBLISH of `bytes` payload bytes against the broker's inbound rates: over
   * one, input is held until the budget refills, or (the broker's `disconnect` action) the
   * reason to disconnect with 0x96 is returned.
   */
  countPublish(bytes: number, now: number): string | undefined;
  /** Stops reading (an on-publish hook's backpressure) until `resume`. */
  pause(): void;
  resume(): void;
  /**
   * Reads nothing more until `work` settles, then calls `then` (value undefined if it failed;
   * `closed`: the connection closed meanwhile) and reads on where the parser stopped.
   */
  readAfter<T>(work: Promise<T>, then: (value: T | undefined, closed: boolean) => void): void;
  /** Stops reading for `reason` (input-holds.ts) until `releaseInput(reason)`. */
  holdInput(reason: InputHold): void;
  releaseInput(reason: InputHold): void;
  /** CONNECT accepted: the connection now serves `options.session`. Caller sends CONNACK next. */
  accept(options: AcceptOptions): void;
  /** Refuses a CONNECT: CONNACK with the code, then close; after `delayMs` when given. */
  refuse(code: ErrorCode, detail: string, delayMs?: number): void;
  /** The client sent DISCONNECT with `reasonCode`. */
  clientDisconnected(reasonCode: number): void;
}
