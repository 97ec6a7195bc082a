/**
 * Packet tracing: the packets of one client (all of them, in and out), or the PUBLISH packets
 * whose topic matches one MQTT topic filter, described as they pass one broker, for an operator
 * watching live (the admin API streams them as Server-Sent Events, admin/routes/trace.ts).
 *
 * Each broker holds one `PacketTraces`: the traces open on it. A connection holds its broker's
 * from CONNECT admission on (`NO_TRACES` before, which is never active), and calls `record`
 * for a packet only after reading `active`. Invariants:
 * - No trace open costs one boolean read per packet and allocates nothing: `active` is a plain
 *   field, false exactly while no trace is open on this broker.
 * - A trace sees one broker: only that broker's connections hold its registry, so another
 *   tenant's packets never reach it, and an open trace costs other tenants nothing.
 * - The packet path never waits for a reader: a sink that is `full` (its reader is behind) gets
 *   `skip()` instead of the event, which is then not even described. The sink bounds its buffer
 *   and reports the skipped count in the stream.
 * - An event is built while `record` runs: the payload is cut and encoded then, never kept.
 * - Credentials never leave: a CONNECT's password and any authentication data are shown as
 *   their length only; the payload (and a will's) only when the trace asked for it.
 * - Wildcards match as in a subscription: `+` one level, `#` the rest and the parent
 *   [MQTT-4.7.1-2], and neither at the first level matches a topic starting with `$` [MQTT-4.7.2-1].
 */
import { isUtf8 } from 'node:buffer';
import type { Packet, Properties, WillMessage } from '../protocol/index.ts';

export type TraceDirection = 'in' | 'out';

/** One described packet, ready for JSON (snake_case fields, as the admin API writes them). */
export type TraceEvent = Record<string, unknown>;

/** Where a trace's events go (an HTTP response, for the admin API). */
export interface TraceSink {
  /** True while the reader is behind and the sink holds as much as it may. */
  readonly full: boolean;
  /** An event that matched was dropped because the sink was full. */
  skip(): void;
  write(event: TraceEvent): void;
  /** The trace ends for `reason` (its broker went): the sink closes its trace and its reader. */
  end(reason: string): void;
}

/** What a trace follows: exactly one of a client id and a topic filter. */
export interface TraceSelector {
  readonly clientId?: string | undefined;
  /** An MQTT topic filter (a valid one, not `$share/`): the PUBLISH packets whose topic it matches. */
  readonly topic?: string | undefined;
  /** Show payloads, cut to this many bytes; undefined: no payload. */
  readonly payloadBytes?: number | undefined;
}

/** One open trace. */
export class PacketTrace {
  readonly clientId: string | undefined;
  readonly payloadBytes: number | undefined;
  readonly sink: TraceSink;
  readonly #filter: readonly string[] | undefined;

  constructor(selector: TraceSelector, sink: TraceSink) {
    this.clientId = selector.clientId;
    this.payloadBytes = selector.payloadBytes;
    this.#filter = selector.topic?.split('/');
    this.sink = sink;
  }

  /** Whether this trace follows `packet` of `clientId`, whose PUBLISH topic is `topic`. */
  follows(clientId: string, packet: Packet, topic: string): boolean {
    if (this.#filter === undefined) return clientId === this.clientId;
    return packet.type === 'publish' && filterMatches(this.#filter, topic);
  }
}

/** The traces open on one broker. */
export class PacketTraces {
  /** False exactly while no trace is open: the one thing the packet path reads. */
  active = false;
  readonly #open = new Set<PacketTrace>();

  get size(): number {
    return this.#open.size;
  }

  /** Opens a trace; the caller closes it (`close`) when its reader goes or its time is up. */
  open(selector: TraceSelector, sink: TraceSink): PacketTrace {
    const trace = new PacketTrace(selector, sink);
    this.#open.add(trace);
    this.active = true;
    return trace;
  }

  close(trace: PacketTrace): void {
    this.#open.delete(trace);
    this.active = this.#open.size > 0;
  }

  /** Ends every open trace (the broker is deleted). */
  endAll(reason: string): void {
    for (const trace of [...this.#open]) trace.sink.end(reason);
    this.#open.clear();
    this.active = false;
  }

  /**
   * A packet passed `clientId`'s connection. `topic` is a PUBLISH's topic with any inbound
   * Topic Alias resolved (the packet's own topic when omitted).
   */
  record(direction: TraceDirection, clientId: string, packet: Packet, topic?: string): void {
    const topicName = topic ?? (packet.type === 'publish' ? packet.topic : '');
    for (const trace of this.#open) {
      if (!trace.follows(clientId, packet, topicName)) continue;
      if (trace.sink.full) {
        trace.sink.skip();
        continue;
      }
      trace.sink.write(describePacket(direction, clientId, packet, topicName, trace.payloadBytes));
    }
  }
}

/** The registry of a connection not yet routed to a broker: never active. */
export const NO_TRACES: PacketTraces = new PacketTraces();

/** Whether `topic` matches the filter split into `levels` (see the header). */
export function filterMatches(levels: readonly string[], topic: string): boolean {
  if (topic.charCodeAt(0) === 0x24 && (levels[0] === '+' || levels[0] === '#')) return false; // [MQTT-4.7.2-1]
  let start = 0;
  for (const level of levels) {
    if (level === '#') return true; // [MQTT-4.7.1-2]: the parent level too
    if (start > topic.length) return false;
    let end = topic.indexOf('/', start);
    if (end === -1) end = topic.length;
    if (level !== '+' && (end - start !== level.length || !topic.startsWith(level, start))) return false;
    start = end + 1;
  }
  return start > topic.length;
}

/** `packet` as a trace event; `payloadBytes` undefined leaves payloads out. */
export function describePacket(
  direction: TraceDirection,
  clientId: string,
  packet: Packet,
  topic: string,
  payloadBytes: number | undefined,
): TraceEvent {
  const event: TraceEvent = {
    time: new Date().toISOString(),
    direction,
    client_id: clientId,
    type: packet.type.toUpperCase(),
  };
  if ('packetId' in packet && packet.packetId !== undefined) event.packet_id = packet.packetId;
  if ('reasonCode' in packet) event.reason_code = packet.reasonCode;
  if ('reasonCodes' in packet) event.reason_codes = packet.reasonCodes;
  switch (packet.type) {
    case 'connect':
      event.protocol_version = packet.protocolVersion;
      event.clean_start = packet.clean;
      event.keep_alive = packet.keepalive;
      event.username = packet.username ?? null;
      event.password_size = packet.password?.length ?? null;
      if (packet.will !== undefined) event.will = describeWill(packet.will, payloadBytes);
      break;
    case 'connack':
      event.session_present = packet.sessionPresent;
      break;
    case 'publish':
      event.topic = topic;
      event.qos = packet.qos;
      event.dup = packet.dup;
      event.retain = packet.retain;
      Object.assign(event, describePayload(packet.payload, payloadBytes));
      break;
    case 'subscribe':
      event.subscriptions = packet.subscriptions.map((s) => ({
        filter: s.topicFilter,
        qos: s.qos,
        no_local: s.noLocal,
        retain_as_published: s.retainAsPublished,
        retain_handling: s.retainHandling,
      }));
      break;
    case 'unsubscribe':
      event.filters = packet.topicFilters;
      break;
  }
  if ('properties' in packet && packet.properties !== undefined) {
    const properties = describeProperties(packet.properties);
    if (Object.keys(properties).length > 0) event.properties = properties;
  }
  return event;
}

function describeWill(will: WillMessage, payloadBytes: number | undefined): TraceEvent {
  const out: TraceEvent = { topic: will.topic, qos: will.qos, retain: will.retain };
  Object.assign(out, describePayload(will.payload, payloadBytes));
  if (will.properties !== undefined) out.properties = describeProperties(will.properties);
  return out;
}

/**
 * The payload's size and, when asked, its first `payloadBytes` bytes: as text when they are
 * UTF-8 (a cut through a character drops the partial character), else base64.
 */
function describePayload(payload: Buffer, payloadBytes: number | undefined): TraceEvent {
  const out: TraceEvent = { payload_size: payload.length };
  if (payloadBytes === undefined) return out;
  const truncated = payload.length > payloadBytes;
  let cut = payload.subarray(0, payloadBytes);
  // A UTF-8 character is at most 4 bytes: trim up to 3 of a character the cut split.
  for (let trim = 0; truncated && trim < 3 && cut.length > 0 && !isUtf8(cut); trim++)
    cut = cut.subarray(0, cut.length - 1);
  if (isUtf8(cut)) {
    out.payload = cut.toString('utf8');
    out.payload_encoding = 'utf8';
  } else {
    out.payload = payload.subarray(0, payloadBytes).toString('base64');
    out.payload_encoding = 'base64';
  }
  out.payload_truncated = truncated;
  return out;
}

/** v5 properties in snake_case; binary ones in base64, authentication data by size only. */
function describeProperties(p: Properties): TraceEvent {
  const out: TraceEvent = {};
  for (const [name, value] of Object.entries(p)) {
    if (value === undefined) continue;
    const key = name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
    if (name === 'authenticationData') out.authentication_data_size = (value as Buffer).length;
    else if (name === 'userProperties')
      out.user_properties = (value as [string, string][]).map(([k, v]) => ({ key: k, value: v }));
    else if (Buffer.isBuffer(value)) out[key] = value.toString('base64');
    else out[key] = value;
  }
  return out;
}
