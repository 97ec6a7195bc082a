/**
 * One network connection of one client: bytes in through the Parser to the dispatcher,
 * packets out through a corked writer, and the connection's lifecycle.
 *
 * Lifecycle: 'awaiting-connect' (CONNECT timeout armed) → ['authenticating': an enhanced
 * authentication exchange of AUTH packets, still under the CONNECT timeout] → 'connected'
 * (CONNACK sent, keep alive armed) → 'closed'. `release` runs exactly once when the connection
 * stops serving its session, synchronously, whether the socket closed, the server closed it or
 * another connection took the session over; it publishes or schedules the will and starts
 * the session's expiry clock.
 *
 * Until 'connected' the client is unauthenticated: the parser accepts packets of at most
 * `maxConnectPacketSize` (so no more than that is held for the connect timeout) and the server
 * counts the connection as awaiting CONNECT. `accept` raises the parser's limit to
 * `maximumPacketSize` before the next packet is read, and the transport's own input bound with
 * it (`ConnectionInfo.raiseInputLimit`: WebSocket messages).
 *
 * Writes within one event-loop turn are corked and flushed together once every socket readable
 * in that turn has been handled (setImmediate, after the poll phase): one write per receiver
 * for messages that arrived on several sockets at once.
 * Acknowledgements that vouch for stored state (PUBACK, PUBREC, PUBCOMP, PUBREL) wait, when
 * the action wrote to the message store, for the commit holding it (`sendDurable`); once one
 * waits, later ones queue behind it so they leave in order [MQTT-4.6.0-2], [MQTT-4.6.0-3].
 * `congested` reports unsent bytes above the configured bound; the session then queues
 * QoS 1/2 and drops QoS 0 (counted), and 'drain' resumes it.
 */
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { AuthExchange, ClientIdentity } from '../auth/index.ts';
import type { Config } from '../config.ts';
import { connackCode, type ErrorCode, errorCodeOfReason, reasonCodeOf } from '../errors.ts';
import {
  type AuthPacket,
  type ConnectPacket,
  encode,
  type Packet,
  Parser,
  type ProtocolError,
  type ProtocolVersion,
  type PubackPacket,
  type SubackPacket,
  type UnsubackPacket,
  type WillMessage,
} from '../protocol/index.ts';
import type { Message, PublishOptions } from '../router/index.ts';
import type { BrokerPort as Broker } from './broker-port.ts';
import { dispatch } from './dispatcher.ts';
import type { SessionLink } from './host.ts';
import { OrderedAcks } from './ordered-acks.ts';
import type { Session } from './session.ts';
import { type LongTimer, setLongTimeout } from './timers.ts';
import { OutboundTopicAliases } from './topic-aliases.ts';
import { releaseWill } from './will.ts';

export interface ConnectionInfo {
  transport: 'tcp' | 'tls' | 'ws' | 'wss' | 'memory';
  /** The client's address: from the socket, or from a trusted proxy (PROXY header, X-Forwarded-For). */
  remoteAddress: string;
  remotePort: number;
  /** TLS Server Name Indication sent by the client (tls, wss); routes to a tenant. */
  servername?: string;
  /** The HTTP Host header of the WebSocket upgrade (ws, wss), without the port; routes to a tenant. */
  host?: string;
  /** The client certificate verified against the listener's CA (mutual TLS), for authentication. */
  clientCertificate?: { subjectCN: string; fingerprint256: string };
  /**
   * The transport's own bound on input it buffers before the parser sees it, raised with the
   * parser's when CONNECT is accepted (WebSocket: ws holds a whole frame first).
   */
  raiseInputLimit?: (maximumPacketSize: number) => void;
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
  /**
   * The broker (tenant) a CONNECT belongs to, or why it is refused (unknown broker, anonymous
   * access off, credentials the broker does not accept).
   */
  brokerFor(connection: Connection, connect: ConnectPacket): Admitted | { refuse: ErrorCode; detail: string };
  /** CONNECT accepted: the connection no longer counts as awaiting CONNECT. */
  admitted(connection: Connection): void;
  /** The socket has closed and the connection released. */
  closed(connection: Connection): void;
}

export interface AcceptOptions {
  broker: Broker;
  session: Session;
  keepalive: number;
  window: number;
  clientMaximumPacketSize: number;
  /** The client's Topic Alias Maximum (v5 CONNECT; 0 when absent) [MQTT-3.1.2-27]. */
  clientTopicAliasMaximum: number;
  will: WillMessage | undefined;
}

type State = 'awaiting-connect' | 'authenticating' | 'connected' | 'closed';

/** An enhanced authentication in progress: at CONNECT, or a re-authentication (section 4.12). */
export interface PendingAuth {
  method: string;
  exchange: AuthExchange;
  /** A step is being computed (asynchronous authenticator): the client must wait for our AUTH. */
  busy: boolean;
  /** What to do once the exchange succeeds. */
  onSuccess: (data: Buffer | undefined) => void;
}

/** Milliseconds a closing socket gets to finish before it is destroyed. */
const CLOSE_GRACE_MS = 1000;

export class Connection implements SessionLink {
  readonly socket: Duplex;
  readonly info: ConnectionInfo;
  readonly ctx: ConnectionContext;
  readonly config: Config;
  readonly parser: Parser;
  state: State = 'awaiting-connect';
  version: ProtocolVersion = 4;
  clientId = '';
  broker: Broker | undefined;
  session: Session | undefined;
  will: WillMessage | undefined;
  window: number;
  clientMaximumPacketSize = Number.POSITIVE_INFINITY;
  /** PUBACK/PUBREC in PUBLISH order while some wait for an on-publish hook. */
  readonly acks = new OrderedAcks();
  /** Inbound topic aliases (v5), alias → topic, this connection only [MQTT-3.3.2-7]. */
  readonly topicAliases = new Map<number, string>();
  lastActivity = Date.now();
  /** Whether closing publishes the will: cleared by a normal DISCONNECT [MQTT-3.1.2-10]. */
  publishWillOnClose = true;
  /** v5 Request Problem Information (default 1): 0 keeps Reason Strings off acks [MQTT-3.1.2-29]. */
  problemInformation = true;
  /** The Authentication Method the client authenticated with (v5 enhanced authentication). */
  authMethod: string | undefined;
  /** Who the client authenticated as at CONNECT (tenancy admission). */
  identity: ClientIdentity | undefined;
  /** The authenticated principal, when an authenticator named one. */
  username: string | undefined;
  /** The AUTH exchange in progress, if any. */
  auth: PendingAuth | undefined;
  /** Outbound topic aliases, when configured and the client accepts them. */
  #aliases: OutboundTopicAliases | undefined;
  /** PUBLISH rate limit: start of the current one-second window, and PUBLISHes in it. */
  #rateWindowStart = 0;
  #rateCount = 0;
  #keepaliveMs = 0;
  #keepaliveTimer: NodeJS.Timeout | undefined;
  #connectTimer: NodeJS.Timeout | undefined;
  /** Disconnects (0xA0) when the token the client connected with expires. */
  #credentialTimer: LongTimer | undefined;
  #corked = false;
  #released = false;
  /** Acknowledgements waiting for a store commit. */
  #acksWaiting = 0;
  /** Reading stopped by an on-publish hook's backpressure (`pause`/`resume`). */
  #inputPaused = false;
  /** Why the connection ended, for the disconnect log line. */
  #cause = 'connection lost';

  constructor(socket: Duplex, info: ConnectionInfo, ctx: ConnectionContext) {
    this.socket = socket;
    this.info = info;
    this.ctx = ctx;
    this.config = ctx.config;
    this.window = ctx.config.maxInflightMessages;
    this.parser = new Parser({ maximumPacketSize: ctx.config.maxConnectPacketSize });
    socket.on('data', this.#onData);
    socket.on('drain', this.#onDrain);
    socket.on('error', this.#onError);
    socket.on('close', this.#onClose);
    socket.on('end', this.#onEnd);
    this.#connectTimer = setTimeout(this.#onConnectTimeout, ctx.config.connectTimeout);
  }

  /**
   * A logger bound to this connection. Built per use, not kept: a connection logs a handful of
   * lines in its life, and a stored pino child costs memory and CPU on every accept (measured
   * in the connection-storm profile).
   */
  get log(): Logger {
    return this.ctx.logger.child({
      remote: `${this.info.remoteAddress}:${this.info.remotePort}`,
      transport: this.info.transport,
      clientId: this.clientId || undefined,
    });
  }

  get closed(): boolean {
    return this.state === 'closed';
  }

  get congested(): boolean {
    return this.socket.writableLength > this.config.maxWriteBufferBytes;
  }

  // ---- input ----

  #onData = (chunk: Buffer): void => {
    if (this.state === 'closed') return;
    this.lastActivity = Date.now();
    // [MQTT-3.1.0-1]: a first byte other than CONNECT's (0x10) is refused at once, rather than
    // buffering a body whose length the stranger's bytes happen to declare (e.g. an HTTP request).
    if (this.state === 'awaiting-connect' && this.parser.bufferedBytes === 0 && chunk[0] !== 0x10) {
      this.disconnect('PROTOCOL_ERROR', `first byte 0x${chunk[0]?.toString(16)} is not a CONNECT packet`);
      return;
    }
    let error: ProtocolError | null;
    try {
      error = this.parser.push(chunk, this.#onPacket);
    } catch (err) {
      this.log.error({ err, clientId: this.clientId }, 'internal error handling packet');
      this.disconnect('IMPLEMENTATION_ERROR', 'internal error');
      return;
    }
    if (error !== null) this.#onProtocolError(error);
  };

  #onPacket = (packet: Packet): boolean => {
    if (this.state === 'closed') return false;
    dispatch(this, packet);
    return !this.closed;
  };

  #onProtocolError(error: ProtocolError): void {
    if (this.state === 'closed') return;
    if (this.state === 'awaiting-connect') {
      if (errorCodeOfReason(error.reasonCode) === 'PACKET_TOO_LARGE') {
        this.#refuseOversizedConnect(error);
        return;
      }
      // [MQTT-3.1.2-2]: an unsupported protocol level is answered, in the form the client reads.
      if (error.connackVersion !== undefined) {
        this.version = error.connackVersion;
        this.refuse('UNSUPPORTED_PROTOCOL_VERSION', error.message);
        return;
      }
      this.log.warn({ reason: error.reasonCode, detail: error.message }, 'invalid CONNECT; closing');
      this.#close();
      return;
    }
    this.disconnect(errorCodeOfReason(error.reasonCode), error.message); // [MQTT-4.13.1-1]
  }

  /**
   * A CONNECT over the pre-CONNECT limit, refused once its protocol level is read and before
   * any more of it is held: a v5 client gets CONNACK 0x95 (section 3.2.2.2), a v3.1/3.1.1
   * client a close, as its CONNACK has no code for it [MQTT-3.2.2-6] (3.1.1); the connection is
   * closed either way [MQTT-4.13.2-1]. Logged once, at info: anyone can cause it, unauthenticated.
   *
   * The rest of that packet is still coming. Reading it only to drop it, for the close grace
   * period, made 64 such clients cost the process 45 MB of read buffers, and even a paused
   * socket reads one more 64 KiB chunk; so the socket is destroyed here, in the read that
   * refused, right after the CONNACK is written (as mosquitto closes on an oversized packet).
   * The CONNACK, the first bytes the server sends, has left by then; the unread input makes the
   * close a reset, which can lose it only at a client that had not read it yet, and the close is
   * what MQTT requires, CONNACK or not [MQTT-4.13.2-1].
   */
  #refuseOversizedConnect(error: ProtocolError): void {
    this.log.info(
      { reason: error.reasonCode, detail: error.message, limit: this.parser.maximumPacketSize },
      'CONNECT too large; closing',
    );
    if (error.connackVersion === 5) {
      this.version = 5;
      this.#writeConnack('PACKET_TOO_LARGE', error.message);
    }
    this.#close();
    this.socket.destroy();
  }

  /**
   * Stops reading (an on-publish hook has too many messages pending). Keep alive does not
   * count the pause against the client: its PINGREQs are simply not read yet.
   */
  pause(): void {
    this.#inputPaused = true;
    this.socket.pause();
  }

  resume(): void {
    if (!this.#inputPaused) return;
    this.#inputPaused = false;
    this.lastActivity = Date.now();
    if (this.state !== 'closed') this.socket.resume();
  }

  // ---- output ----

  write(bytes: Buffer): void {
    if (!this.#corked) {
      this.#corked = true;
      this.socket.cork();
      scheduleFlush(this);
    }
    this.socket.write(bytes);
  }

  /** Sends what was written since the first write of this event-loop turn. */
  flush(): void {
    this.#corked = false;
    this.socket.uncork();
  }

  /** The scheduled flush; a no-op when the connection already flushed (closing). */
  flushIfCorked(): void {
    if (this.#corked) this.flush();
  }

  send(packet: Packet): void {
    if (this.state === 'closed') return;
    this.write(encode(packet, this.version));
  }

  sendPublish(message: Message, delivery: PublishOptions): boolean {
    if (this.#aliases !== undefined) return this.#sendAliased(message, delivery);
    const bytes = message.encodeFor(this.version, delivery, Date.now());
    if (bytes.length > this.clientMaximumPacketSize) return false; // [MQTT-3.1.2-24]
    if (this.state !== 'closed') this.write(bytes);
    return true;
  }

  #sendAliased(message: Message, delivery: PublishOptions): boolean {
    const aliases = this.#aliases!;
    const choice = aliases.lookup(message.topic);
    const bytes = message.encodeAliased(delivery, Date.now(), choice.alias, !choice.known);
    if (bytes.length > this.clientMaximumPacketSize) return false; // [MQTT-3.1.2-24]
    if (this.state === 'closed') return true;
    aliases.commit(message.topic, choice);
    this.write(bytes);
    return true;
  }

  /**
   * Sends an acknowledgement (PUBACK, PUBREC, SUBACK, UNSUBACK, AUTH) with a v5 Reason String,
   * left out when the client asked for no problem information [MQTT-3.1.2-29] or when it would
   * make the packet larger than the client accepts [MQTT-3.4.2-2], [MQTT-3.9.2-1].
   */
  sendWithReason(packet: PubackPacket | SubackPacket | UnsubackPacket | AuthPacket, reason: string): void {
    if (this.state === 'closed') return;
    if (this.version !== 5 || !this.problemInformation) {
      this.send(packet);
      return;
    }
    const bytes = encode(
      { ...packet, properties: { ...packet.properties, reasonString: reason.slice(0, 128) } },
      5,
    );
    this.write(bytes.length > this.clientMaximumPacketSize ? encode(packet, 5) : bytes);
  }

  /**
   * Counts one inbound PUBLISH against `maxPublishRate`; false when this one exceeds it.
   * A fixed one-second window: cheap, and bursts up to twice the rate across a boundary are
   * tolerated by design.
   */
  countPublish(now: number): boolean {
    const limit = this.config.maxPublishRate;
    if (limit === 0) return true;
    if (now - this.#rateWindowStart >= 1000) {
      this.#rateWindowStart = now;
      this.#rateCount = 0;
    }
    return ++this.#rateCount <= limit;
  }

  sendPubrel(packetId: number): void {
    this.send({ type: 'pubrel', packetId, reasonCode: 0 });
  }

  /**
   * Sends an acknowledgement once what it vouches for is committed: at once when `wrote` is
   * false and no earlier acknowledgement waits (or the store has nothing pending), else after
   * the store's commit. A failed commit never yields a success: v5 PUBACK/PUBREC carry 0x80
   * (and a refused QoS 2 id is released); any other case closes the connection (0x80).
   */
  sendDurable(packet: PubackPacket, wrote: boolean): void {
    const store = this.broker!.store;
    if ((!wrote && this.#acksWaiting === 0) || !store.pending) {
      this.send(packet);
      return;
    }
    this.#acksWaiting++;
    store.afterCommit((error) => {
      this.#acksWaiting--;
      if (error === undefined) this.send(packet);
      else this.#ackFailed(packet);
    });
  }

  /**
   * A refusing PUBACK/PUBREC (a reason code of 0x80 or more, with a Reason String), behind any
   * acknowledgement still waiting for a commit, so that answers keep PUBLISH order
   * [MQTT-4.6.0-2], [MQTT-4.6.0-3].
   */
  sendRefusal(packet: PubackPacket, reason: string): void {
    if (this.#acksWaiting === 0) {
      this.sendWithReason(packet, reason);
      return;
    }
    this.#acksWaiting++;
    this.broker!.store.afterCommit(() => {
      this.#acksWaiting--;
      this.sendWithReason(packet, reason);
    });
  }

  #ackFailed(packet: PubackPacket): void {
    if (this.version === 5 && (packet.type === 'puback' || packet.type === 'pubrec')) {
      if (packet.type === 'pubrec') this.session?.releaseInboundQos2(packet.packetId);
      this.sendWithReason(
        { ...packet, reasonCode: reasonCodeOf('STORAGE_UNAVAILABLE') },
        'message store unavailable',
      );
      return;
    }
    this.disconnect('STORAGE_UNAVAILABLE', `message store unavailable: ${packet.type} not sent`);
  }

  #onDrain = (): void => {
    this.session?.pump();
  };

  // ---- lifecycle ----

  /** CONNECT accepted: the connection now serves `session`. Caller sends CONNACK next. */
  accept(options: AcceptOptions): void {
    clearTimeout(this.#connectTimer);
    this.#connectTimer = undefined;
    this.state = 'connected';
    // Admitted: packets up to the Maximum Packet Size the CONNACK advertises, from the next one
    // on (the parser reads on past this CONNECT with the new limit).
    this.parser.maximumPacketSize = this.config.maximumPacketSize;
    this.info.raiseInputLimit?.(this.config.maximumPacketSize);
    this.ctx.admitted(this);
    this.broker = options.broker;
    this.session = options.session;
    this.clientId = options.session.clientId;
    this.will = options.will;
    this.window = options.window;
    this.clientMaximumPacketSize = options.clientMaximumPacketSize;
    const aliases = Math.min(this.config.outboundTopicAliases, options.clientTopicAliasMaximum);
    if (this.version === 5 && aliases > 0) this.#aliases = new OutboundTopicAliases(aliases); // [MQTT-3.1.2-26]
    this.#keepaliveMs = options.keepalive * 1500; // [MQTT-3.1.2-24] one and a half times
    if (this.#keepaliveMs > 0) this.#keepaliveTimer = setTimeout(this.#checkKeepalive, this.#keepaliveMs);
    const expiresAt = this.identity?.expiresAt;
    if (expiresAt !== undefined)
      this.#credentialTimer = setLongTimeout(
        () => this.disconnect('MAXIMUM_CONNECT_TIME', 'credentials expired'),
        Math.max(0, expiresAt - Date.now()),
      );
  }

  /** Refuses a CONNECT: CONNACK with the (version-mapped) code, then close [MQTT-3.2.2-5]. */
  refuse(code: ErrorCode, detail: string): void {
    this.log.warn(
      { clientId: this.clientId || undefined, reason: reasonCodeOf(code), code, detail },
      'connection refused',
    );
    this.#writeConnack(code, detail);
    this.#close();
  }

  /** A refusing CONNACK in this.version's form, with a Reason String for v5. */
  #writeConnack(code: ErrorCode, detail: string): void {
    const reason = reasonCodeOf(code);
    const packet: Packet = {
      type: 'connack',
      sessionPresent: false,
      reasonCode: connackCode(reason, this.version),
    };
    if (this.version === 5) packet.properties = { reasonString: detail.slice(0, 128) };
    this.write(encode(packet, this.version));
  }

  /**
   * Server-initiated close of a connected client: v5 gets DISCONNECT with the reason
   * [MQTT-4.13.1-1]; the will is published (the client did not send DISCONNECT).
   */
  disconnect(code: ErrorCode, detail: string): void {
    if (this.state === 'closed') return;
    const reason = reasonCodeOf(code);
    // Shutdown, takeover and administrative closes are not the client's fault: not logged as protocol errors.
    if (
      code === 'SERVER_SHUTTING_DOWN' ||
      code === 'SESSION_TAKEN_OVER' ||
      code === 'ADMINISTRATIVE_ACTION'
    ) {
      this.log.info({ reason, code, detail }, 'disconnecting client');
    } else {
      this.log.warn(
        { clientId: this.clientId || undefined, reason, code, detail },
        'protocol error; disconnecting',
      );
    }
    this.#cause = `server disconnect 0x${reason.toString(16)}: ${detail}`;
    if (this.state === 'authenticating') {
      // Before CONNACK the refusal is a CONNACK [MQTT-4.12.0-4].
      this.refuse(code, detail);
      return;
    }
    if (this.state === 'connected' && this.version === 5) {
      let bytes = encode(
        { type: 'disconnect', reasonCode: reason, properties: { reasonString: detail.slice(0, 128) } },
        5,
      );
      if (bytes.length > this.clientMaximumPacketSize)
        bytes = encode({ type: 'disconnect', reasonCode: reason }, 5);
      this.write(bytes);
    }
    this.#close();
  }

  /** The client sent DISCONNECT: normal unless reason 0x04 asks for the will [MQTT-3.14.4-3]. */
  clientDisconnected(reasonCode: number): void {
    this.publishWillOnClose = reasonCode === 0x04;
    this.#cause = `client DISCONNECT 0x${reasonCode.toString(16)}`;
    this.#close();
  }

  #close(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.#release();
    if (this.#corked) this.flush();
    this.socket.end();
    setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS).unref();
  }

  /** Stops serving the session: will, expiry, timers. Runs once. */
  #release(): void {
    if (this.#released) return;
    this.#released = true;
    clearTimeout(this.#connectTimer);
    clearTimeout(this.#keepaliveTimer);
    this.#credentialTimer?.cancel();
    const session = this.session;
    const broker = this.broker;
    broker?.hooks?.pipeline.forget(this);
    if (session === undefined || broker === undefined || session.link !== this) return;
    const will = this.will;
    this.will = undefined;
    if (will !== undefined && this.publishWillOnClose && !this.ctx.shuttingDown) {
      releaseWill(will, this, session, broker);
    }
    session.detach(() => broker.expireSession(session));
    if (session.expiryInterval === 0) broker.endSession(session); // [MQTT-3.1.2-6] ends with the connection
    this.log.info({ cause: this.#cause, sessionKept: session.expiryInterval > 0 }, 'client disconnected');
  }

  #checkKeepalive = (): void => {
    if (this.#inputPaused) this.lastActivity = Date.now();
    const idle = Date.now() - this.lastActivity;
    if (idle >= this.#keepaliveMs) {
      this.disconnect('KEEP_ALIVE_TIMEOUT', `no packet for ${idle} ms`); // [MQTT-3.1.2-24]
      return;
    }
    this.#keepaliveTimer = setTimeout(this.#checkKeepalive, this.#keepaliveMs - idle);
  };

  #onConnectTimeout = (): void => {
    this.log.warn({ timeoutMs: this.config.connectTimeout }, 'no CONNECT in time; closing');
    this.#close();
  };

  #onEnd = (): void => {
    // The peer half-closed: nothing more will arrive, so the connection is over.
    this.#close();
  };

  #onError = (err: Error): void => {
    this.log.debug({ err: err.message, clientId: this.clientId || undefined }, 'socket error');
  };

  #onClose = (): void => {
    this.state = 'closed';
    this.#release();
    this.ctx.closed(this);
  };
}

/**
 * Corked connections are flushed together once the event loop has handled every socket that
 * was readable in this turn (setImmediate runs right after the poll phase): messages that
 * arrive on several sockets at once leave in one write per receiver instead of one each.
 */
let toFlush: Connection[] = [];
let flushScheduled = false;

function scheduleFlush(connection: Connection): void {
  toFlush.push(connection);
  if (flushScheduled) return;
  flushScheduled = true;
  setImmediate(flushAll);
}

function flushAll(): void {
  const batch = toFlush;
  toFlush = [];
  flushScheduled = false;
  for (let i = 0; i < batch.length; i++) batch[i]!.flushIfCorked();
}
