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
 * Output invariants (the socket side of writing, gathering and the write budget: socket-output.ts):
 * - Nothing is written once the state is 'closed', except what closing itself flushes.
 * - No PUBLISH, CONNACK or DISCONNECT larger than the client's Maximum Packet Size is sent
 *   [MQTT-3.1.2-24]; the Reason String and User Properties of any packet are dropped rather
 *   than exceed it ([MQTT-3.2.2-19], [MQTT-3.2.2-20], [MQTT-3.4.2-2], [MQTT-3.9.2-1], ...).
 *   The limit is the CONNECT's, from the CONNECT on: it binds a refusing CONNACK too.
 * - Acknowledgements that vouch for stored state (PUBACK, PUBREC, PUBCOMP, PUBREL) wait, when
 *   the action wrote to the message store, for the commit holding it (`sendDurable`); once one
 *   waits, later ones queue behind it so they leave in order [MQTT-4.6.0-2], [MQTT-4.6.0-3].
 *   A failed commit never yields a success.
 * - Every packet written goes through `writePacket` or `sendPublish`, where a packet trace
 *   (observability/packet-trace.ts) sees it; with no trace open that is one flag read.
 */
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
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
import type { ConnectionContext } from './handler-context.ts';
import { HOLD_HOOK, HOLD_SESSION, HOLD_TURN, type InputHold } from './input-holds.ts';
import { OrderedAcks } from './ordered-acks.ts';
import { packetLimitsOf } from './packet-limits.ts';
import { currentTurn, inputWork, READ_BUDGET } from './read-budget.ts';
import type { Session } from './session.ts';
import { SocketOutput } from './socket-output.ts';
import { OutboundTopicAliases } from './topic-aliases.ts';
import { tracedPublish } from './traced-publish.ts';

export abstract class ConnectionIO extends SocketOutput {
  readonly info: ConnectionInfo;
  readonly ctx: ConnectionContext;
  readonly parser: Parser;
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
  /** `<broker>.<namespace>` of that broker (`routeTo`), for the log. */
  brokerAddress: string | undefined;
  /** The packet traces open on that broker (`routeTo`); before it, one never active. */
  traces: PacketTraces = NO_TRACES;
  /** Bytes read before the connection had a broker, added to its count by `routeTo`. */
  #bytesUncounted = 0;
  /** Outbound topic aliases, when configured and the client accepts them. */
  #aliases: OutboundTopicAliases | undefined;
  /** PUBACK/PUBREC/PUBCOMP/PUBREL held until their store commit (durable-acks.ts). */
  readonly #durableAcks = new DurableAcks(this);
  /** The reasons reading is stopped (input-holds.ts bits); 0 while the socket flows. */
  #holds = 0;
  /** Input work (packets + deliveries) done in turn `#workTurn` (read-budget.ts). */
  #work = 0;
  #workTurn = -1;
  /** A packet's work is pending and the packets behind it wait (`readAfter`). */
  #awaiting = false;
  /**
   * Set while a refusal waits to be sent: what arrives is dropped unparsed (the socket keeps
   * flowing, so a peer's close is still seen and ends the wait).
   */
  protected discardInput = false;

  constructor(socket: Duplex, info: ConnectionInfo, ctx: ConnectionContext) {
    super(socket, ctx.config, ctx.writeBudget);
    this.info = info;
    this.ctx = ctx;
    this.parser = new Parser({
      maximumPacketSize: ctx.config.maxConnectPacketSize,
      limits: packetLimitsOf(ctx.config),
    });
    socket.on('data', this.#onData);
    socket.on('drain', this.#onDrain);
  }

  /** Each whole packet the parser reads; false stops the parser (the connection closed). */
  protected abstract readonly onPacket: (packet: Packet) => boolean;
  /** The input is not MQTT the parser accepts. */
  protected abstract protocolError(error: ProtocolError): void;

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
    else if (this.parser.yielded && this.state !== 'closed' && !this.#awaiting) {
      this.holdInput(HOLD_TURN);
      setImmediate(this.#continueInput);
    }
  }

  /** A packet for `onPacket`, counted with the deliveries it made; YIELD once over the budget. */
  #onPacketCounted = (packet: Packet): boolean | typeof YIELD => {
    const before = inputWork.deliveries;
    if (!this.onPacket(packet)) return false;
    if (this.#awaiting) return YIELD; // the packet started work the next ones wait for (`readAfter`)
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

  /**
   * Reads nothing more until `work` settles, then calls `then` with its value (undefined if it
   * failed) and reads on where the parser stopped: the packets the client sent behind the one
   * being handled wait, in order. CONNECT uses it while another cluster node hands the client's
   * session over. `then` runs even if the connection closed meanwhile (`closed` says so).
   */
  readAfter<T>(work: Promise<T>, then: (value: T | undefined, closed: boolean) => void): void {
    this.#awaiting = true;
    this.holdInput(HOLD_SESSION);
    work
      .catch(() => undefined)
      .then((value) => {
        this.#awaiting = false;
        then(value, this.state === 'closed');
        if (this.state === 'closed') return;
        this.#continueInput(); // what the parser kept, on a fresh budget
        this.releaseInput(HOLD_SESSION);
      })
      .catch((err: unknown) => {
        this.log.error({ err }, 'internal error after waiting');
        this.disconnect('IMPLEMENTATION_ERROR', 'internal error');
      });
  }

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
