/**
 * A connection's byte input and output and its flow control: the half of `Connection` that
 * runs for every packet. The lifecycle and the timers are the other half (connection.ts, which
 * extends this class; one object per socket, so no call goes through a second object).
 *
 * Input: every chunk goes through the Parser; whole packets go to `onPacket` (the dispatcher),
 * a malformed stream to `protocolError`. Before CONNECT a first byte other than CONNECT's is
 * refused at once [MQTT-3.1.0-1]. Reading stops while any reason of input-holds.ts holds it
 * (`holdInput`/`releaseInput`; `pause`/`resume` are an on-publish hook's backpressure); keep
 * alive does not count a held connection's silence against the client. Past its read budget
 * for the turn (read-budget.ts) the parser yields between packets and reading is held
 * (HOLD_TURN) until a later turn has gone through what was already read, in order.
 *
 * Output invariants:
 * - Nothing is written once the state is 'closed', except what closing itself flushes.
 * - Writes within one event-loop turn are held and flushed together once every socket
 *   readable in that turn has been handled (setImmediate, after the poll phase): one write per
 *   receiver for messages that arrived on several sockets at once. Packets under
 *   `GATHER_BELOW` are gathered (references, no copy) and copied into one buffer when the turn
 *   flushes, when `GATHER_CHUNK` bytes are gathered, or before a larger packet, which is
 *   written as it is: the socket sees one buffer per turn, not one write (a request and an
 *   iovec, kept the whole turn) per copy, and the order of packets holds. Nothing is kept
 *   between turns (an idle connection holds no buffer).
 * - No PUBLISH, CONNACK or DISCONNECT larger than the client's Maximum Packet Size is sent
 *   [MQTT-3.1.2-24]; the Reason String and User Properties of any packet are dropped rather
 *   than exceed it ([MQTT-3.2.2-19], [MQTT-3.2.2-20], [MQTT-3.4.2-2], [MQTT-3.9.2-1], ...).
 *   The limit is the CONNECT's, from the CONNECT on: it binds a refusing CONNACK too.
 * - Acknowledgements that vouch for stored state (PUBACK, PUBREC, PUBCOMP, PUBREL) wait, when
 *   the action wrote to the message store, for the commit holding it (`sendDurable`); once one
 *   waits, later ones queue behind it so they leave in order [MQTT-4.6.0-2], [MQTT-4.6.0-3].
 *   A failed commit never yields a success.
 * - `congested` reports unsent bytes above the configured bound (`--max-write-buffer`), or,
 *   while the server's unsent bytes together are over `--max-total-write-buffer`, at or above
 *   its fair share of the budget (write-budget.ts); the session then queues QoS 1/2 and drops QoS 0
 *   (counted as `congested` or `write_budget`), and 'drain' resumes it.
 * - Each write charges its bytes to the server's WriteBudget at once, so `congested` sees this
 *   turn's output while the turn fans out (one turn never overshoots the budget by more than a
 *   packet per connection); each flush reconciles the charge with the socket's real backlog,
 *   and a 'drain' or the close takes it back. While the process is overloaded (overload-watch.ts,
 *   via the budget), a connection that still owed a 'drain' at its last flush is congested too:
 *   QoS 0 to it is shed first (counted as `overload`). A backlog over `--max-write-buffer` that does not drain within
 *   `--max-congested-ms` closes the connection (QUOTA_EXCEEDED, v5 DISCONNECT 0x97): the
 *   client exceeded a per-client bound, which is what 0x97 says; 0x89 Server busy would
 *   blame the server, and is what overload protection sends.
 * - Every packet written goes through `writePacket` or `sendPublish`, where a packet trace
 *   (observability/packet-trace.ts) sees it; with no trace open that is one flag read.
 */
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import type { ErrorCode } from '../errors.ts';
import { NO_TRACES, type PacketTraces } from '../observability/index.ts';
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
  YIELD,
} from '../protocol/index.ts';
import type { Message, PublishOptions } from '../router/index.ts';
import type { ConnectionInfo } from '../transport/index.ts';
import type { BrokerPort as Broker } from './broker-port.ts';
import { DurableAcks } from './durable-acks.ts';
import { scheduleFlush } from './flush-scheduler.ts';
import type { ConnectionContext, ConnectionState } from './handler-context.ts';
import type { BrokerStats } from './host.ts';
import { HOLD_HOOK, HOLD_TURN, type InputHold } from './input-holds.ts';
import { OrderedAcks } from './ordered-acks.ts';
import { packetLimitsOf } from './packet-limits.ts';
import { currentTurn, inputWork, READ_BUDGET } from './read-budget.ts';
import type { Session } from './session.ts';
import { OutboundTopicAliases } from './topic-aliases.ts';
import { tracedPublish } from './traced-publish.ts';
import type { WriteBudget } from './write-budget.ts';

/**
 * Packets smaller than this are gathered and copied into one buffer per turn; larger ones are
 * written as they are. A fan-out shares one encoded buffer among its receivers: copying 1 KB
 * to each cost more (memory and time) than the write it saves, copying 64 B did not
 * (docs/performance.md, isolation).
 */
const GATHER_BELOW = 1024;
/** Gathered bytes past which they go to the socket before the flush: bounds one copy. */
const GATHER_CHUNK = 64 * 1024;

export abstract class ConnectionIO {
  readonly socket: Duplex;
  readonly info: ConnectionInfo;
  readonly ctx: ConnectionContext;
  readonly config: Config;
  readonly parser: Parser;
  state: ConnectionState = 'awaiting-connect';
  version: ProtocolVersion = 4;
  clientId = '';
  broker: Broker | undefined;
  session: Session | undefined;
  clientMaximumPacketSize = Number.POSITIVE_INFINITY;
  /** PUBACK/PUBREC in PUBLISH order while some wait for an on-publish hook. */
  readonly acks = new OrderedAcks();
  lastActivity = Date.now();
  /** v5 Request Problem Information (default 1): 0 keeps Reason Strings off acks [MQTT-3.1.2-29]. */
  problemInformation = true;
  /**
   * The counters of the broker this connection was routed to, from CONNECT admission on
   * (`routeTo`): bytes in and out, PUBLISH packets sent, and what the lifecycle counts.
   */
  stats: BrokerStats | undefined;
  /** `<broker>.<namespace>` of that broker (`routeTo`), for the log. */
  brokerAddress: string | undefined;
  /** The packet traces open on that broker (`routeTo`); before it, one never active. */
  traces: PacketTraces = NO_TRACES;
  /** Bytes read before the connection had a broker, added to its count by `routeTo`. */
  #bytesUncounted = 0;
  /** Outbound topic aliases, when configured and the client accepts them. */
  #aliases: OutboundTopicAliases | undefined;
  #corked = false;
  /** PUBACK/PUBREC/PUBCOMP/PUBREL held until their store commit (durable-acks.ts). */
  readonly #durableAcks = new DurableAcks(this);
  /** The reasons reading is stopped (input-holds.ts bits); 0 while the socket flows. */
  #holds = 0;
  /** Input work (packets + deliveries) done in turn `#workTurn` (read-budget.ts). */
  #work = 0;
  #workTurn = -1;
  /**
   * Set while a refusal waits to be sent: what arrives is dropped unparsed (the socket keeps
   * flowing, so a peer's close is still seen and ends the wait).
   */
  protected discardInput = false;
  readonly #budget: WriteBudget;
  /** This connection's backlog as the write budget counts it: the last flush's, plus bytes written since. */
  #backlog = 0;
  /** The backlog the last flush left (the socket owed a 'drain'); 0 once it drains. */
  #settled = 0;
  /** Small packets written this turn and not yet given to the socket, and their bytes. */
  #gathered: Buffer[] | undefined;
  #gatheredBytes = 0;
  /** Runs out `--max-congested-ms` once the backlog passed `--max-write-buffer`; 'drain' stops it. */
  #congestedTimer: NodeJS.Timeout | undefined;

  constructor(socket: Duplex, info: ConnectionInfo, ctx: ConnectionContext) {
    this.socket = socket;
    this.info = info;
    this.ctx = ctx;
    this.config = ctx.config;
    this.parser = new Parser({
      maximumPacketSize: ctx.config.maxConnectPacketSize,
      limits: packetLimitsOf(ctx.config),
    });
    this.#budget = ctx.writeBudget;
    socket.on('data', this.#onData);
    socket.on('drain', this.#onDrain);
  }

  /** Each whole packet the parser reads; false stops the parser (the connection closed). */
  protected abstract readonly onPacket: (packet: Packet) => boolean;
  /** The input is not MQTT the parser accepts. */
  protected abstract protocolError(error: ProtocolError): void;
  /** Closes the connection from the server side (v5: DISCONNECT with the code's reason). */
  abstract disconnect(code: ErrorCode, detail: string): void;

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

  /**
   * CONNECT admission named `broker` (once): from now on the figures count there, the log names
   * it, and its packet traces see this connection, from `connect` (the CONNECT admitted) on.
   */
  routeTo(broker: Broker, connect?: ConnectPacket): void {
    if (this.stats !== undefined) return;
    this.stats = broker.stats;
    this.brokerAddress = broker.address;
    this.traces = broker.traces;
    broker.stats.bytesReceived += this.#bytesUncounted;
    if (connect !== undefined && this.traces.active) this.traces.record('in', this.clientId, connect);
  }

  get closed(): boolean {
    return this.state === 'closed';
  }

  get congested(): boolean {
    if (this.socket.writableLength + this.#gatheredBytes > this.config.maxWriteBufferBytes) return true;
    // Only a connection that still owed a 'drain' at its last flush is shed by the budget: one
    // that takes a burst into the kernel within a turn is not slow, however large the burst.
    if (this.#settled === 0) return false;
    const budget = this.#budget;
    return budget.sheds(this.#backlog) || budget.shedding;
  }

  /** While congested, what by: this connection's own bound, the write budget, or overload (drop counting). */
  get congestionDrop(): 'droppedCongested' | 'droppedWriteBudget' | 'droppedOverload' {
    if (this.socket.writableLength + this.#gatheredBytes > this.config.maxWriteBufferBytes)
      return 'droppedCongested';
    return this.#budget.sheds(this.#backlog) ? 'droppedWriteBudget' : 'droppedOverload';
  }

  // ---- input ----

  #onData = (chunk: Buffer): void => {
    if (this.state === 'closed' || this.discardInput) return;
    this.lastActivity = Date.now();
    if (this.stats !== undefined) this.stats.bytesReceived += chunk.length;
    else this.#bytesUncounted += chunk.length;
    // [MQTT-3.1.0-1]: a first byte other than CONNECT's (0x10) is refused at once, rather than
    // buffering a body whose length the stranger's bytes happen to declare (e.g. an HTTP request).
    if (this.state === 'awaiting-connect' && this.parser.bufferedBytes === 0 && chunk[0] !== 0x10) {
      this.disconnect('PROTOCOL_ERROR', `first byte 0x${chunk[0]?.toString(16)} is not a CONNECT packet`);
      return;
    }
    const turn = currentTurn();
    if (this.#workTurn !== turn) {
      this.#workTurn = turn;
      this.#work = 0;
    }
    this.#parse(chunk);
  };

  /** Parses `chunk`, or (undefined) what the parser kept when it yielded; past the budget, yields. */
  #parse(chunk: Buffer | undefined): void {
    let error: ProtocolError | null;
    try {
      error =
        chunk === undefined
          ? this.parser.continue(this.#onPacketCounted)
          : this.parser.push(chunk, this.#onPacketCounted);
    } catch (err) {
      this.log.error({ err }, 'internal error handling packet');
      this.disconnect('IMPLEMENTATION_ERROR', 'internal error');
      return;
    }
    if (error !== null) this.protocolError(error);
    else if (this.parser.yielded && this.state !== 'closed') {
      this.holdInput(HOLD_TURN);
      setImmediate(this.#continueInput);
    }
  }

  /** A packet for `onPacket`, counted with the deliveries it made; YIELD once over the budget. */
  #onPacketCounted = (packet: Packet): boolean | typeof YIELD => {
    const before = inputWork.deliveries;
    if (!this.onPacket(packet)) return false;
    this.#work += 1 + inputWork.deliveries - before;
    return this.#work < READ_BUDGET || YIELD;
  };

  /** A later turn: a new budget for what the parser kept; reading resumes once it is all read. */
  #continueInput = (): void => {
    if (this.state === 'closed') return;
    this.#workTurn = currentTurn();
    this.#work = 0;
    this.#parse(undefined);
    if (!this.parser.yielded) this.releaseInput(HOLD_TURN);
  };

  /** Stops reading for `reason` until `releaseInput(reason)`; others may hold it too. */
  holdInput(reason: InputHold): void {
    if (this.#holds === 0 && this.state !== 'closed') this.socket.pause();
    this.#holds |= reason;
  }

  /** Ends the hold for `reason`; reading resumes when no reason holds it any more. */
  releaseInput(reason: InputHold): void {
    if ((this.#holds & reason) === 0) return;
    this.#holds &= ~reason;
    if (this.#holds !== 0) return;
    this.lastActivity = Date.now();
    if (this.state !== 'closed') this.socket.resume();
  }

  /** Stops reading: an on-publish hook has too many of this client's messages pending. */
  pause(): void {
    this.holdInput(HOLD_HOOK);
  }

  resume(): void {
    this.releaseInput(HOLD_HOOK);
  }

  /** Some reason holds reading (keep alive then does not count the silence). */
  protected get inputHeld(): boolean {
    return this.#holds !== 0;
  }

  // ---- output ----

  /**
   * Outbound topic aliases up to the lower of the client's Topic Alias Maximum and ours (v5
   * only) [MQTT-3.1.2-26].
   */
  protected limitOutput(clientTopicAliasMaximum: number): void {
    const aliases = Math.min(this.config.outboundTopicAliases, clientTopicAliasMaximum);
    if (this.version === 5 && aliases > 0) this.#aliases = new OutboundTopicAliases(aliases); // [MQTT-3.1.2-26]
  }

  write(bytes: Buffer): void {
    if (!this.#corked) {
      this.#corked = true;
      scheduleFlush(this);
    }
    const size = bytes.length;
    if (this.stats !== undefined) this.stats.bytesSent += size;
    this.#budget.change(this.#backlog, this.#backlog + size);
    this.#backlog += size;
    if (size >= GATHER_BELOW) {
      this.#writeGathered();
      this.#writeEarly(bytes);
      return;
    }
    if (this.#gathered === undefined) this.#gathered = [bytes];
    else this.#gathered.push(bytes);
    this.#gatheredBytes += size;
    if (this.#gatheredBytes >= GATHER_CHUNK) this.#writeGathered();
  }

  /** Gives the gathered packets to the socket before the flush (see #writeEarly). */
  #writeGathered(): void {
    const bytes = this.#takeGathered();
    if (bytes !== undefined) this.#writeEarly(bytes);
  }

  /** The gathered packets as one buffer (the one packet as it is), taken; undefined: none. */
  #takeGathered(): Buffer | undefined {
    const gathered = this.#gathered;
    if (gathered === undefined) return undefined;
    this.#gathered = undefined;
    const size = this.#gatheredBytes;
    this.#gatheredBytes = 0;
    return gathered.length === 1 ? gathered[0]! : Buffer.concat(gathered, size);
  }

  /** Before the flush the socket is corked from the first buffer on: the turn's leave in one writev. */
  #writeEarly(bytes: Buffer): void {
    if (this.socket.writableCorked === 0) this.socket.cork();
    this.socket.write(bytes);
  }

  /**
   * Sends the turn's writes. The gathered ones go without corking when nothing went before them
   * (the common case), which spares the stream its buffered-write records.
   */
  flush(): void {
    this.#corked = false;
    const bytes = this.#takeGathered();
    if (bytes !== undefined) this.socket.write(bytes);
    if (this.socket.writableCorked > 0) this.socket.uncork();
    this.#account();
  }

  /**
   * Reconciles the write budget's charge with the backlog left after a flush (counted only
   * while the socket owes a 'drain', which takes it back), and starts the congestion clock
   * when it is over this connection's bound.
   */
  #account(): void {
    const socket = this.socket;
    const backlog = socket.writableNeedDrain && !socket.destroyed ? socket.writableLength : 0;
    this.#settled = backlog;
    if (backlog !== this.#backlog) {
      this.#budget.change(this.#backlog, backlog);
      this.#backlog = backlog;
    }
    if (
      backlog > this.config.maxWriteBufferBytes &&
      this.#congestedTimer === undefined &&
      this.config.maxCongestedMs > 0 &&
      this.state !== 'closed'
    ) {
      this.#congestedTimer = setTimeout(this.#congestedTooLong, this.config.maxCongestedMs);
      this.#congestedTimer.unref();
    }
  }

  #congestedTooLong = (): void => {
    this.#congestedTimer = undefined;
    if (this.state !== 'connected' || this.socket.writableLength <= this.config.maxWriteBufferBytes) return;
    if (this.stats !== undefined) this.stats.disconnectedCongested++;
    this.disconnect(
      'QUOTA_EXCEEDED',
      `unsent bytes over --max-write-buffer for ${this.config.maxCongestedMs} ms`,
    );
  };

  /** The socket drained or closed: its backlog leaves the write budget, its congestion clock stops. */
  protected releaseBacklog(): void {
    clearTimeout(this.#congestedTimer);
    this.#congestedTimer = undefined;
    this.#settled = 0;
    if (this.#backlog === 0) return;
    this.#budget.change(this.#backlog, 0);
    this.#backlog = 0;
  }

  /** The scheduled flush; a no-op when the connection already flushed (closing). */
  flushIfCorked(): void {
    if (this.#corked) this.flush();
  }

  /**
   * `packet` encoded for this client within its Maximum Packet Size [MQTT-3.1.2-24]: as it is
   * when it fits, else without the properties a sender may leave out to fit (Reason String,
   * User Property [MQTT-3.2.2-19], [MQTT-3.2.2-20], [MQTT-3.14.2-3], [MQTT-3.14.2-4], and
   * the Response Information a CONNACK MAY carry, section 3.1.2.11.7); undefined when even
   * that is too large.
   */
  encodeForClient(packet: Packet): Buffer | undefined {
    const bytes = encode(packet, this.version);
    if (bytes.length <= this.clientMaximumPacketSize) return bytes;
    if (!('properties' in packet) || packet.properties === undefined) return undefined;
    const { reasonString, userProperties, responseInformation, ...kept } = packet.properties;
    const bare = encode({ ...packet, properties: kept } as Packet, this.version);
    return bare.length <= this.clientMaximumPacketSize ? bare : undefined;
  }

  /** Writes `bytes`, the encoding of `packet` for this client, where a trace sees it. */
  writePacket(packet: Packet, bytes: Buffer): void {
    if (this.traces.active) this.traces.record('out', this.clientId, packet);
    this.write(bytes);
  }

  send(packet: Packet): void {
    if (this.state === 'closed') return;
    this.writePacket(packet, encode(packet, this.version));
  }

  sendPublish(message: Message, delivery: PublishOptions): boolean {
    if (this.#aliases !== undefined) return this.#sendAliased(message, delivery);
    const bytes = message.encodeFor(this.version, delivery, Date.now());
    if (bytes.length > this.clientMaximumPacketSize) return false; // [MQTT-3.1.2-24]
    if (this.state !== 'closed') {
      if (this.traces.active) this.#tracePublish(message, delivery, undefined);
      this.write(bytes);
      this.stats!.sent[delivery.qos]++;
    }
    return true;
  }

  #sendAliased(message: Message, delivery: PublishOptions): boolean {
    const aliases = this.#aliases!;
    const choice = aliases.lookup(message.topic);
    const bytes = message.encodeAliased(delivery, Date.now(), choice.alias, !choice.known);
    if (bytes.length > this.clientMaximumPacketSize) return false; // [MQTT-3.1.2-24]
    if (this.state === 'closed') return true;
    aliases.commit(message.topic, choice);
    if (this.traces.active) this.#tracePublish(message, delivery, choice.alias);
    this.write(bytes);
    this.stats!.sent[delivery.qos]++;
    return true;
  }

  /** An outbound PUBLISH for an open trace (its bytes come from the Message's cache). */
  #tracePublish(message: Message, delivery: PublishOptions, topicAlias: number | undefined): void {
    this.traces.record('out', this.clientId, tracedPublish(message, delivery, this.version, topicAlias));
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
    const withReason = {
      ...packet,
      properties: { ...packet.properties, reasonString: reason.slice(0, 128) },
    };
    // An acknowledgement is not withheld: one that cannot fit even bare (a limit below 4 bytes)
    // still goes, as before, rather than stall the client's flow.
    this.writePacket(withReason, this.encodeForClient(withReason) ?? encode(packet, 5));
  }

  sendPubrel(packetId: number): void {
    this.send({ type: 'pubrel', packetId, reasonCode: 0 });
  }

  /**
   * Sends an acknowledgement once what it vouches for is committed (durable-acks.ts): at once
   * when `wrote` is false and none waits, else after the store's commit, in order.
   */
  sendDurable(packet: PubackPacket, wrote: boolean): void {
    this.#durableAcks.send(this.broker!.store, packet, wrote);
  }

  /** A refusing PUBACK/PUBREC behind any acknowledgement still waiting for a commit [MQTT-4.6.0-2]. */
  sendRefusal(packet: PubackPacket, reason: string): void {
    this.#durableAcks.refuse(this.broker!.store, packet, reason);
  }

  #onDrain = (): void => {
    this.releaseBacklog();
    this.session?.pump();
  };
}
