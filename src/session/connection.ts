/**
 * One network connection of one client: its lifecycle and timers. The byte input and output,
 * cork/flush and flow control are the class this one extends (connection-io.ts); packets go
 * from there to the dispatcher (dispatcher.ts), which hands them to handlers/ as the
 * `PacketContext` this class implements (handler-context.ts).
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
 * Every refusal before CONNACK is a CONNACK [MQTT-3.2.2-5] where the client's version has a
 * code for it and the client's Maximum Packet Size holds it, else a close; after it, a
 * server-initiated close sends v5 clients DISCONNECT with the reason [MQTT-4.13.1-1]. Every
 * close goes through `#close`: state 'closed' first, then release, flush, end, and a destroy
 * after a grace period.
 */
import type { Duplex } from 'node:stream';
import type { ClientIdentity } from '../auth/index.ts';
import { connackCode, type ErrorCode, errorCodeOfReason, reasonCodeOf } from '../errors.ts';
import { withSuppressed } from '../observability/index.ts';
import { type Packet, type ProtocolError, ReasonCode, type WillMessage } from '../protocol/index.ts';
import type { ConnectionInfo } from '../transport/index.ts';
import { ClientBuckets } from './broker-limits.ts';
import { type CloseCause, clientDisconnected, connectRefused } from './client-events.ts';
import { ConnectionIO } from './connection-io.ts';
import { dispatch } from './dispatcher.ts';
import type { AcceptOptions, ConnectionContext, PacketContext, PendingAuth } from './handler-context.ts';
import { countCode, type LinkView, type SessionLink } from './host.ts';
import { HOLD_RATE } from './input-holds.ts';
import { type LongTimer, setLongTimeout } from './timers.ts';
import { releaseWill } from './will.ts';

/** Milliseconds a closing socket gets to finish before it is destroyed. */
const CLOSE_GRACE_MS = 1000;

export class Connection extends ConnectionIO implements PacketContext, SessionLink {
  will: WillMessage | undefined;
  window: number;
  /** Whether closing publishes the will: cleared by a normal DISCONNECT [MQTT-3.1.2-10]. */
  publishWillOnClose = true;

  /** The will an unasked close would release (SessionLink.heldWill). */
  get heldWill(): WillMessage | undefined {
    return this.publishWillOnClose ? this.will : undefined;
  }
  /** The Authentication Method the client authenticated with (v5 enhanced authentication). */
  authMethod: string | undefined;
  /** Who the client authenticated as at CONNECT (tenancy admission). */
  identity: ClientIdentity | undefined;
  /** The authenticated principal, when an authenticator named one. */
  username: string | undefined;
  /** The AUTH exchange in progress, if any. */
  auth: PendingAuth | undefined;
  /** This connection's inbound rate buckets, made at its first PUBLISH under a rate limit. */
  #buckets: ClientBuckets | undefined;
  /** Releases the rate hold (HOLD_RATE) once the budget the client overspent has refilled. */
  #rateTimer: NodeJS.Timeout | undefined;
  /** The keep alive in force, in seconds, and when CONNECT was accepted (for `describe`). */
  #keepalive = 0;
  #connectedAt = 0;
  #keepaliveMs = 0;
  #keepaliveTimer: NodeJS.Timeout | undefined;
  #connectTimer: NodeJS.Timeout | undefined;
  /** A refusal held back by the brute-force limiter; cleared when the connection closes first. */
  #refusalTimer: NodeJS.Timeout | undefined;
  /** Disconnects (0xA0) when the token the client connected with expires. */
  #credentialTimer: LongTimer | undefined;
  #released = false;
  /** Why the connection ended, for the client.disconnected event; the socket's end until told otherwise. */
  #cause: CloseCause = { by: 'network' };
  #topicAliases: Map<number, string> | undefined;

  /**
   * Inbound topic aliases (v5), alias → topic, this connection only [MQTT-3.3.2-7]. Made when a
   * PUBLISH first carries an alias: most clients never send one, and an empty Map is ~230 bytes.
   */
  get topicAliases(): Map<number, string> {
    this.#topicAliases ??= new Map();
    return this.#topicAliases;
  }

  constructor(socket: Duplex, info: ConnectionInfo, ctx: ConnectionContext) {
    super(socket, info, ctx);
    this.window = ctx.config.maxInflightMessages;
    socket.on('error', this.#onError);
    socket.on('close', this.#onClose);
    socket.on('end', this.#onEnd);
    this.#connectTimer = setTimeout(this.#onConnectTimeout, ctx.config.connectTimeout);
  }

  protected override readonly onPacket = (packet: Packet): boolean => {
    if (this.state === 'closed' || this.discardInput) return false;
    if (this.traces.active) this.#traceIn(packet);
    dispatch(this, packet);
    return !this.closed;
  };

  protected override protocolError(error: ProtocolError): void {
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
      this.#logSampled(
        'warn',
        { reason: error.reasonCode, detail: error.message },
        'invalid CONNECT; closing',
      );
      this.#close();
      return;
    }
    // A packet over a configured bound (docs/limits.md) is counted under that bound.
    if (error.limit !== undefined && this.stats !== undefined) this.stats.refusedOverLimit[error.limit]++;
    // A second CONNECT of an unsupported level is a protocol error like any second CONNECT
    // [MQTT-3.1.0-2]: Unsupported Protocol Version is a CONNACK code, no DISCONNECT reason code.
    const code = errorCodeOfReason(error.reasonCode);
    this.disconnect(code === 'UNSUPPORTED_PROTOCOL_VERSION' ? 'PROTOCOL_ERROR' : code, error.message); // [MQTT-4.13.1-1]
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
    this.#logSampled(
      'info',
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

  /** An inbound packet, for an open trace: a PUBLISH by its topic, any Topic Alias resolved. */
  #traceIn(packet: Packet): void {
    const alias =
      packet.type === 'publish' && packet.topic === '' ? packet.properties?.topicAlias : undefined;
    const topic = alias === undefined ? undefined : (this.topicAliases.get(alias) ?? '');
    this.traces.record('in', this.clientId, packet, topic);
  }

  // ---- rate limiting ----

  /**
   * Spends one inbound PUBLISH of `bytes` payload bytes against its broker's inbound rates
   * (broker-limits.ts; nothing to do while none is set). Over one, by default its input is held
   * until the budget refills (throttle, never a disconnect); with the broker's `disconnect`
   * action, the reason to disconnect (0x96) is returned instead. Counted per broker and limit.
   */
  countPublish(bytes: number, now: number): string | undefined {
    const rates = this.broker!.limits.rates;
    if (rates === undefined) return undefined;
    this.#buckets ??= new ClientBuckets();
    const wait = rates.spend(this.#buckets, bytes, now);
    if (wait === 0) return undefined;
    const over = this.#buckets.over;
    if (rates.disconnect) {
      this.stats!.refusedOverLimit[over]++;
      return rates.describe(over);
    }
    // Input already read (the rest of this chunk) still spends, deepening the wait.
    if (this.#rateTimer === undefined) this.stats!.refusedOverLimit[over]++;
    else clearTimeout(this.#rateTimer);
    this.holdInput(HOLD_RATE);
    this.#rateTimer = setTimeout(this.#endRateHold, wait);
    return undefined;
  }

  #endRateHold = (): void => {
    this.#rateTimer = undefined;
    this.releaseInput(HOLD_RATE);
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
    this.routeTo(options.broker);
    const stats = options.broker.stats;
    stats.connectionsAccepted++;
    stats.connections[this.info.transport]++;
    this.broker = options.broker;
    this.session = options.session;
    this.clientId = options.session.clientId;
    this.will = options.will;
    this.window = options.window;
    this.limitOutput(options.clientTopicAliasMaximum);
    this.#connectedAt = Date.now();
    this.#keepalive = options.keepalive;
    this.#keepaliveMs = options.keepalive * 1500; // [MQTT-3.1.2-24] one and a half times
    if (this.#keepaliveMs > 0) this.#keepaliveTimer = setTimeout(this.#checkKeepalive, this.#keepaliveMs);
    const expiresAt = this.identity?.expiresAt;
    if (expiresAt !== undefined)
      this.#credentialTimer = setLongTimeout(
        () => this.disconnect('MAXIMUM_CONNECT_TIME', 'credentials expired'),
        Math.max(0, expiresAt - Date.now()),
      );
  }

  describe(): LinkView {
    return {
      transport: this.info.transport,
      remoteAddress: this.info.remoteAddress,
      remotePort: this.info.remotePort,
      protocolVersion: this.version,
      keepAlive: this.#keepalive,
      connectedAt: this.#connectedAt,
    };
  }

  /**
   * Refuses a CONNECT: CONNACK with the (version-mapped) code, then close [MQTT-3.2.2-5]. No
   * CONNACK when a v3 CONNACK has no code for the reason [MQTT-3.2.2-6] (3.1.1), nor when even
   * a bare one exceeds the client's Maximum Packet Size [MQTT-3.1.2-24].
   *
   * With `delayMs` (the brute-force limiter slows this address down) the CONNACK leaves after a
   * timer, never a wait on the event loop: meanwhile input is dropped, the timer (at most 5 s)
   * replaces the CONNECT timeout, and a close by the peer cancels it (#release).
   */
  refuse(code: ErrorCode, detail: string, delayMs = 0): void {
    if (delayMs > 0) {
      this.discardInput = true;
      clearTimeout(this.#connectTimer);
      this.#refusalTimer = setTimeout(() => this.refuse(code, detail), delayMs);
      return;
    }
    if (this.stats !== undefined) countCode(this.stats.connectionsRefused, code);
    const connackSent = this.#writeConnack(code, detail);
    connectRefused(this, {
      code,
      reason: reasonCodeOf(code),
      detail,
      connackSent,
      broker: this.brokerAddress,
    });
    this.#close();
  }

  /** A refusing CONNACK in this.version's form, with a Reason String for v5; false: none sent. */
  #writeConnack(code: ErrorCode, detail: string): boolean {
    const reasonCode = connackCode(reasonCodeOf(code), this.version);
    if (reasonCode === undefined) return false;
    const packet: Packet = { type: 'connack', sessionPresent: false, reasonCode };
    if (this.version === 5) packet.properties = { reasonString: detail.slice(0, 128) };
    const bytes = this.encodeForClient(packet);
    if (bytes !== undefined) this.writePacket(packet, bytes);
    return bytes !== undefined;
  }

  /**
   * Server-initiated close of a connected client: v5 gets DISCONNECT with the reason
   * [MQTT-4.13.1-1]; the will is published (the client did not send DISCONNECT).
   */
  override disconnect(code: ErrorCode, detail: string): void {
    if (this.state === 'closed') return;
    const reason = reasonCodeOf(code);
    // Shutdown, takeover and administrative closes are not the client's fault: the
    // client.disconnected event tells them. What the client did wrong is logged here, once.
    if (code !== 'SERVER_SHUTTING_DOWN' && code !== 'SESSION_TAKEN_OVER' && code !== 'ADMINISTRATIVE_ACTION')
      this.#logSampled('warn', { reason, code, detail }, 'protocol error; disconnecting');
    this.#cause = { by: 'server', reason, code, detail };
    if (this.state === 'authenticating') {
      // Before CONNACK the refusal is a CONNACK [MQTT-4.12.0-4].
      this.refuse(code, detail);
      return;
    }
    if (this.state === 'connected' && this.version === 5) {
      const packet: Packet = {
        type: 'disconnect',
        reasonCode: reason,
        properties: { reasonString: detail.slice(0, 128) },
      };
      const bytes = this.encodeForClient(packet);
      if (bytes !== undefined) this.writePacket(packet, bytes);
    }
    this.#close();
  }

  /** The client sent DISCONNECT: normal unless reason 0x04 asks for the will [MQTT-3.14.4-3]. */
  clientDisconnected(reasonCode: number): void {
    this.publishWillOnClose = reasonCode === ReasonCode.DisconnectWithWillMessage;
    this.#cause = { by: 'client', reason: reasonCode };
    this.#close();
  }

  #close(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.#release();
    this.flushIfCorked();
    this.socket.end();
    setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS).unref();
  }

  /** Stops serving the session: will, expiry, timers. Runs once. */
  #release(): void {
    if (this.#released) return;
    this.#released = true;
    if (this.session !== undefined) this.stats!.connections[this.info.transport]--;
    clearTimeout(this.#connectTimer);
    clearTimeout(this.#refusalTimer);
    clearTimeout(this.#keepaliveTimer);
    clearTimeout(this.#rateTimer);
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
    broker.willChanged(session.clientId);
    clientDisconnected(this, broker, this.#cause, session.expiryInterval > 0);
  }

  #checkKeepalive = (): void => {
    if (this.inputHeld) this.lastActivity = Date.now();
    const idle = Date.now() - this.lastActivity;
    if (idle >= this.#keepaliveMs) {
      this.disconnect('KEEP_ALIVE_TIMEOUT', `no packet for ${idle} ms`); // [MQTT-3.1.2-24]
      return;
    }
    this.#keepaliveTimer = setTimeout(this.#checkKeepalive, this.#keepaliveMs - idle);
  };

  #onConnectTimeout = (): void => {
    this.#logSampled('warn', { timeoutMs: this.config.connectTimeout }, 'no CONNECT in time; closing');
    this.#close();
  };

  /**
   * A line about what one client did wrong (bad input, a protocol error, no CONNECT in time),
   * sampled with the client events (`--client-log-rate`): hostile input makes one such line per
   * connection, 62,000 per 100,000 fuzz cases unsampled. The first ones are logged; past the
   * rate they are counted, and the next one logged carries `suppressed`.
   */
  #logSampled(level: 'warn' | 'info', fields: object, message: string): void {
    const dropped = this.ctx.clientLog.take();
    if (dropped !== false) this.log[level](withSuppressed(fields, dropped), message);
  }

  #onEnd = (): void => {
    // The peer half-closed: nothing more will arrive, so the connection is over.
    this.#close();
  };

  #onError = (err: Error): void => {
    this.log.debug({ err: err.message }, 'socket error');
  };

  #onClose = (): void => {
    this.state = 'closed';
    this.#release();
    this.releaseBacklog();
    this.ctx.closed(this);
  };
}
