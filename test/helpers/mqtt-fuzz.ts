/**
 * The hostile-input generator of the fuzz soak (issue 20): seeded, pure, no I/O. A case is a
 * byte sequence one TCP connection sends, built from valid packets of every type in MQTT 3.1
 * (level 3, "MQIsdp"), 3.1.1 and 5.0, encoded by mqtt-packet (not by src/protocol, so a codec
 * bug cannot hide itself), then mutated: bit flips, byte insertions and deletions, truncations,
 * huge or malformed Remaining Lengths and v5 Property Lengths, invalid UTF-8 spliced into
 * strings, wrong first bytes, repeated packets, or nothing but random bytes.
 *
 * Most cases open with a valid CONNECT (waited for or pipelined), because the handlers behind
 * "CONNECT first" hold the state where bugs hide; the rest attack CONNECT itself. Delivery is
 * whole, in random chunks, or slowloris (a byte at a time with pauses).
 *
 * Replay: case `index` of run seed `seed` is `fuzzCase(seed, index)`, always the same bytes;
 * `caseSeed` is what a failure prints next to the hex.
 */
import mqttPacket from 'mqtt-packet';
import { Rng } from './rng.ts';

export type FuzzVersion = 3 | 4 | 5;
/** How the case starts: no CONNECT of its own, a valid CONNECT answered first, or pipelined. */
export type Preamble = 'none' | 'connect-wait' | 'connect-pipelined';
export type Delivery = 'whole' | 'chunked' | 'slowloris';
/** How the fuzzer leaves: FIN, RST, or it waits for the server to act (then destroys). */
export type Ending = 'end' | 'reset' | 'destroy';

export interface FuzzCase {
  index: number;
  /** The seed of this case's own PRNG (derived from the run seed and the index). */
  caseSeed: number;
  version: FuzzVersion;
  preamble: Preamble;
  /** The valid CONNECT sent first (preamble other than 'none'). */
  connect: Buffer | undefined;
  /** The hostile bytes. */
  body: Buffer;
  delivery: Delivery;
  /** Chunk sizes for 'chunked' and 'slowloris' delivery (their sum is body.length). */
  chunks: number[];
  /** Milliseconds between slowloris chunks. */
  gapMs: number;
  ending: Ending;
  /** What was built and done to it, e.g. ["subscribe", "publish", "bitflip x3", "truncate"]. */
  steps: string[];
}

/** One valid packet, with where its v5 Property Length sits when it has one. */
interface Built {
  name: string;
  bytes: Buffer;
  /** Offset of the Property Length varint in `bytes` (v5 only). */
  propsAt?: number;
}

/** Marks a string the generator wants invalid UTF-8 in; replaced after encoding, same length. */
const SENTINEL = '\u007f~U~';
const SENTINEL_BYTES = Buffer.from(SENTINEL, 'utf8');
/** Four-byte replacements for SENTINEL: each breaks [MQTT-1.5.4-1] / [MQTT-1.5.4-2] or skirts them. */
const BAD_UTF8: readonly number[][] = [
  [0xc0, 0x80, 0x41, 0x41], // overlong NUL
  [0xed, 0xa0, 0x80, 0x41], // UTF-16 surrogate U+D800 [MQTT-1.5.4-1]
  [0xff, 0xfe, 0x41, 0x41], // bytes never valid in UTF-8
  [0x41, 0x00, 0x41, 0x41], // U+0000 [MQTT-1.5.4-2]
  [0xf4, 0x90, 0x80, 0x80], // above U+10FFFF
  [0xe2, 0x82, 0x41, 0x41], // truncated sequence
  [0xef, 0xbf, 0xbf, 0x41], // U+FFFF, a non-character (well-formed)
  [0x41, 0x01, 0x1f, 0x7f], // control characters (well-formed, SHOULD NOT)
];

/** Remaining Length / Property Length encodings that are huge, overlong or never terminate. */
const BAD_VARINTS: readonly number[][] = [
  [0xff, 0xff, 0xff, 0x7f], // 268,435,455: the largest there is
  [0xff, 0xff, 0xff, 0xff, 0x01], // five bytes [MQTT-1.5.5-1]
  [0x80, 0x80, 0x80, 0x80], // four continuation bytes, no end
  [0x80, 0x00], // zero, not minimally encoded
  [0xff, 0xff, 0x7f], // 2,097,151
  [0x80, 0x80, 0x01], // 16,384
  [0xff, 0x7f], // 16,383
  [0x7f], // 127
];

/** Deterministic per-case seed: a 32-bit mix of the run seed and the index (splitmix-like). */
export function caseSeedOf(seed: number, index: number): number {
  let h = (seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** The bytes as spaced hex, for failure reports. */
export const hex = (b: Buffer): string => b.toString('hex').replace(/(..)(?!$)/g, '$1 ');

/** A case's replay line: run seed, index, case seed, shape, and every byte in hex. */
export function describeCase(c: FuzzCase, runSeed: number): string {
  return [
    `seed=${runSeed} case=${c.index} caseSeed=${c.caseSeed} v=${c.version} preamble=${c.preamble} delivery=${c.delivery} ending=${c.ending}`,
    `steps: ${c.steps.join(', ')}`,
    ...(c.connect === undefined ? [] : [`connect: ${hex(c.connect)}`]),
    `body (${c.body.length} B): ${hex(c.body.subarray(0, 4096))}${c.body.length > 4096 ? ' …' : ''}`,
  ].join('\n');
}

/** Topic names and filters the fuzzer uses: all under fz/, a few oddities, sometimes bad UTF-8. */
class Strings {
  readonly #rng: Rng;
  readonly #hostile: boolean;
  constructor(rng: Rng, hostile: boolean) {
    this.#rng = rng;
    this.#hostile = hostile;
  }
  #maybeBad(s: string): string {
    return this.#hostile && this.#rng.chance(0.08) ? `${s}${SENTINEL}` : s;
  }
  topic(): string {
    const r = this.#rng;
    const name = r.pick(['fz/a', 'fz/b/c', 'fz/d/e/f', 'fz/$x', 'fz//', 'fz/a b', 'fz/ü', `fz/${r.int(16)}`]);
    if (this.#hostile && r.chance(0.03))
      return r.pick(['', '/', 'fz/+', 'fz/#', '$SYS/x', 'fz/'.padEnd(300, 'l/')]);
    return this.#maybeBad(name);
  }
  filter(): string {
    const r = this.#rng;
    if (r.chance(0.15))
      return r.pick(['#', '+/#', 'fz/#/x', 'fz/a+', '', '$share/g', '$share//fz/a', '$SYS/#', '+']);
    const base = r.pick(['fz/a', 'fz/+', 'fz/#', 'fz/+/c', 'fz/d/+/f', `fz/${r.int(16)}`]);
    const shared = r.chance(0.15) ? `$share/g${r.int(3)}/` : '';
    return this.#maybeBad(`${shared}${base}`);
  }
  clientId(): string {
    // A bounded pool, so sessions left behind by clean-session-0 cases are taken over, not piled
    // up; large enough that an id connects less often than --max-client-connect-rate (10/s)
    // allows at a few thousand cases/s, so cases are not refused with 0x9F before they start.
    return this.#maybeBad(`fz-${this.#rng.int(1024)}`);
  }
  text(): string {
    return this.#maybeBad(this.#rng.pick(['', 'x', 'text/plain', 'a-b-c', 'ü']));
  }
  userProperties(): Record<string, string | string[]> {
    const r = this.#rng;
    const out: Record<string, string | string[]> = {};
    const n = r.chance(0.05) ? 50 : 1 + r.int(3); // mqtt-packet encodes no bytes for an empty set
    for (let i = 0; i < n; i++) out[`k${i}`] = r.chance(0.2) ? [this.text(), this.text()] : this.text();
    return out;
  }
}

const ID = (r: Rng): number => 1 + r.int(r.chance(0.2) ? 65535 : 8);
const REASONS = [0x00, 0x04, 0x10, 0x80, 0x83, 0x87, 0x8e, 0x91, 0x92, 0x97, 0x99, 0x18, 0x19];

type PacketName =
  | 'connect'
  | 'publish'
  | 'puback'
  | 'pubrec'
  | 'pubrel'
  | 'pubcomp'
  | 'subscribe'
  | 'unsubscribe'
  | 'pingreq'
  | 'disconnect'
  | 'auth'
  | 'server-only';

/** Builds valid packets of one protocol version. */
class PacketBuilder {
  readonly #rng: Rng;
  readonly #v: FuzzVersion;
  readonly #s: Strings;
  readonly #hostile: boolean;

  /** `hostile`: strings may carry bad UTF-8 and CONNECT may ask for enhanced authentication. */
  constructor(rng: Rng, version: FuzzVersion, hostile: boolean) {
    this.#rng = rng;
    this.#v = version;
    this.#s = new Strings(rng, hostile);
    this.#hostile = hostile;
  }

  /** Encodes `packet`; `propsAfter`: where its v5 Property Length sits, counted from the body's start. */
  #gen(name: string, packet: mqttPacket.Packet, propsAfter?: number): Built {
    let bytes = mqttPacket.generate(packet, { protocolVersion: this.#v });
    // mqtt-packet answers some packets it will not encode with no bytes rather than a throw.
    if (bytes.length === 0) throw new Error(`mqtt-packet encoded no bytes for ${JSON.stringify(packet)}`);
    let at = bytes.indexOf(SENTINEL_BYTES);
    while (at >= 0) {
      bytes = Buffer.from(bytes);
      Buffer.from(this.#rng.pick(BAD_UTF8)).copy(bytes, at);
      at = bytes.indexOf(SENTINEL_BYTES, at + 4);
    }
    if (this.#v !== 5 || propsAfter === undefined) return { name, bytes };
    return { name, bytes, propsAt: PacketBuilder.bodyStart(bytes) + propsAfter };
  }

  /** Offset of the body after the fixed header of `bytes`. */
  static bodyStart(bytes: Buffer): number {
    let i = 1;
    while (i < bytes.length && (bytes[i]! & 0x80) !== 0) i++;
    return i + 1;
  }

  connect(): Built {
    const r = this.#rng;
    const s = this.#s;
    const v5 = this.#v === 5;
    const packet: mqttPacket.IConnectPacket = {
      cmd: 'connect',
      protocolId: this.#v === 3 ? 'MQIsdp' : 'MQTT',
      protocolVersion: this.#v,
      clientId: this.#v !== 3 && r.chance(0.05) ? '' : s.clientId(),
      clean: r.chance(0.7),
      keepalive: r.pick([0, 5, 60, 600, 65535]),
    };
    if (packet.clientId === '') packet.clean = true; // else mqtt-packet refuses to encode it
    if (r.chance(0.3)) packet.username = s.text();
    if (packet.username !== undefined && r.chance(0.7)) packet.password = r.bytes(r.int(16));
    if (r.chance(0.3)) {
      packet.will = {
        topic: s.topic() || 'fz/will',
        payload: r.bytes(r.chance(0.05) ? 4096 : r.int(32)),
        qos: r.pick([0, 1, 2] as const),
        retain: r.chance(0.2),
        ...(v5
          ? {
              properties: {
                willDelayInterval: r.int(3),
                payloadFormatIndicator: r.bool(),
                messageExpiryInterval: r.int(100),
                contentType: s.text(),
                responseTopic: s.topic(),
                correlationData: r.bytes(r.int(8)),
                userProperties: s.userProperties(),
              },
            }
          : {}),
      };
    }
    if (v5) {
      packet.properties = {
        sessionExpiryInterval: r.pick([0, 0, 5, 60]),
        ...(r.bool() ? { receiveMaximum: 1 + r.int(20) } : {}),
        ...(r.bool() ? { maximumPacketSize: r.pick([128, 1024, 1 << 20]) } : {}),
        ...(r.bool() ? { topicAliasMaximum: r.int(10) } : {}),
        ...(r.bool() ? { requestResponseInformation: r.bool() } : {}),
        ...(r.bool() ? { requestProblemInformation: r.bool() } : {}),
        ...(r.bool() ? { userProperties: s.userProperties() } : {}),
        ...(this.#hostile && r.chance(0.05) ? { authenticationMethod: r.pick(['SCRAM-SHA-256', 'x']) } : {}),
      };
      if (packet.properties.authenticationMethod !== undefined && r.bool())
        packet.properties.authenticationData = r.bytes(r.int(32));
    }
    // Variable header: protocol name "MQTT" (2 + 4), level, flags, keep alive, then properties.
    return this.#gen('connect', packet, 10);
  }

  publish(): Built {
    const r = this.#rng;
    const s = this.#s;
    const qos = r.pick([0, 1, 2] as const);
    const topic = s.topic();
    const packet: mqttPacket.IPublishPacket = {
      cmd: 'publish',
      topic,
      payload: r.bytes(r.chance(0.02) ? 8192 : r.int(64)),
      qos,
      retain: r.chance(0.1),
      dup: r.chance(0.1),
      ...(qos > 0 ? { messageId: ID(r) } : {}),
    };
    if (this.#v === 5 && r.chance(0.7)) {
      packet.properties = {
        ...(r.bool() ? { payloadFormatIndicator: r.bool() } : {}),
        ...(r.bool() ? { messageExpiryInterval: r.int(100) } : {}),
        ...(r.chance(0.3) ? { topicAlias: r.int(12) } : {}),
        ...(r.chance(0.2) ? { responseTopic: s.topic() } : {}),
        ...(r.chance(0.2) ? { correlationData: r.bytes(r.int(16)) } : {}),
        ...(r.chance(0.3) ? { userProperties: s.userProperties() } : {}),
        ...(r.chance(0.05) ? { subscriptionIdentifier: 1 + r.int(100) } : {}),
        ...(r.chance(0.2) ? { contentType: s.text() } : {}),
      };
      // An alias with an empty topic: the alias must already be set [MQTT-3.3.2-8].
      if (packet.properties.topicAlias !== undefined && r.chance(0.3)) packet.topic = '';
    }
    // Topic name, packet identifier (QoS 1/2), then properties.
    return this.#gen('publish', packet, 2 + Buffer.byteLength(packet.topic, 'utf8') + (qos > 0 ? 2 : 0));
  }

  ack(cmd: 'puback' | 'pubrec' | 'pubrel' | 'pubcomp'): Built {
    const r = this.#rng;
    const packet = { cmd, messageId: ID(r) } as mqttPacket.IPubackPacket;
    if (this.#v === 5 && r.chance(0.6)) {
      (packet as { reasonCode?: number }).reasonCode = r.pick(REASONS);
      if (r.bool())
        packet.properties = { reasonString: this.#s.text(), userProperties: this.#s.userProperties() };
    }
    // Packet identifier, reason code, then properties (when there are any).
    return this.#gen(cmd, packet, packet.properties === undefined ? undefined : 3);
  }

  subscribe(): Built {
    const r = this.#rng;
    const n = r.chance(0.03) ? 200 : 1 + r.int(4);
    const subscriptions: mqttPacket.ISubscription[] = [];
    for (let i = 0; i < n; i++) {
      subscriptions.push({
        topic: this.#s.filter(),
        qos: r.pick([0, 1, 2] as const),
        ...(this.#v === 5 ? { nl: r.chance(0.2), rap: r.chance(0.2), rh: r.pick([0, 1, 2] as const) } : {}),
      });
    }
    const packet: mqttPacket.ISubscribePacket = { cmd: 'subscribe', messageId: ID(r), subscriptions };
    if (this.#v === 5 && r.chance(0.5))
      packet.properties = {
        ...(r.bool() ? { subscriptionIdentifier: 1 + r.int(1000) } : {}),
        ...(r.bool() ? { userProperties: this.#s.userProperties() } : {}),
      };
    return this.#gen('subscribe', packet, 2); // after the packet identifier
  }

  unsubscribe(): Built {
    const r = this.#rng;
    const unsubscriptions: string[] = [];
    for (let i = 1 + r.int(4); i > 0; i--) unsubscriptions.push(this.#s.filter());
    const packet: mqttPacket.IUnsubscribePacket = { cmd: 'unsubscribe', messageId: ID(r), unsubscriptions };
    if (this.#v === 5 && r.chance(0.3)) packet.properties = { userProperties: this.#s.userProperties() };
    return this.#gen('unsubscribe', packet, 2); // after the packet identifier
  }

  disconnect(): Built {
    const r = this.#rng;
    const packet: mqttPacket.IDisconnectPacket = { cmd: 'disconnect' };
    if (this.#v === 5 && r.chance(0.7)) {
      packet.reasonCode = r.pick([0x00, 0x04, 0x80, 0x81, 0x8b, 0x93]);
      if (r.bool())
        packet.properties = {
          ...(r.bool() ? { sessionExpiryInterval: r.pick([0, 5, 0xffffffff]) } : {}),
          ...(r.bool() ? { reasonString: this.#s.text() } : {}),
          ...(r.bool() ? { serverReference: this.#s.text() } : {}),
          ...(r.bool() ? { userProperties: this.#s.userProperties() } : {}),
        };
    }
    return this.#gen('disconnect', packet, packet.properties === undefined ? undefined : 1); // after the reason code
  }

  auth(): Built {
    const r = this.#rng;
    const packet: mqttPacket.IAuthPacket = {
      cmd: 'auth',
      reasonCode: r.pick([0x00, 0x18, 0x19]),
      properties: {
        ...(r.chance(0.8) ? { authenticationMethod: r.pick(['SCRAM-SHA-256', 'x', this.#s.text()]) } : {}),
        ...(r.bool() ? { authenticationData: r.bytes(r.int(64)) } : {}),
        ...(r.chance(0.2) ? { reasonString: this.#s.text() } : {}),
        ...(r.chance(0.2) ? { userProperties: this.#s.userProperties() } : {}),
      },
    };
    return this.#gen('auth', packet, 1); // after the reason code
  }

  /** A packet only a server sends (CONNACK, SUBACK, UNSUBACK, PINGRESP): a protocol error from a client. */
  serverOnly(): Built {
    const r = this.#rng;
    const packet = r.pick<mqttPacket.Packet>([
      { cmd: 'connack', returnCode: 0, sessionPresent: false },
      { cmd: 'suback', messageId: ID(r), granted: [0, 1] },
      { cmd: 'unsuback', messageId: ID(r), granted: [] } as unknown as mqttPacket.Packet,
      { cmd: 'pingresp' },
    ]);
    try {
      return this.#gen(packet.cmd, packet);
    } catch {
      return { name: 'pingresp', bytes: Buffer.from([0xd0, 0x00]) };
    }
  }

  build(name: PacketName): Built {
    switch (name) {
      case 'connect':
        return this.connect();
      case 'publish':
        return this.publish();
      case 'puback':
      case 'pubrec':
      case 'pubrel':
      case 'pubcomp':
        return this.ack(name);
      case 'subscribe':
        return this.subscribe();
      case 'unsubscribe':
        return this.unsubscribe();
      case 'pingreq':
        return { name, bytes: Buffer.from([0xc0, 0x00]) };
      case 'disconnect':
        return this.disconnect();
      case 'auth':
        return this.#v === 5 ? this.auth() : this.serverOnly();
      case 'server-only':
        return this.serverOnly();
    }
  }
}

/** Packet types after CONNECT, weighted towards the ones with state behind them. */
const AFTER_CONNECT: readonly PacketName[] = [
  'publish',
  'publish',
  'publish',
  'puback',
  'pubrec',
  'pubrel',
  'pubrel',
  'pubcomp',
  'subscribe',
  'subscribe',
  'unsubscribe',
  'pingreq',
  'disconnect',
  'auth',
  'connect',
  'server-only',
];

/** Writes `varint` over the varint at `at` in `bytes` (sizes may differ). */
function replaceVarint(bytes: Buffer, at: number, varint: readonly number[]): Buffer {
  let end = at;
  while (end < bytes.length && end - at < 4 && (bytes[end]! & 0x80) !== 0) end++;
  end = Math.min(end + 1, bytes.length);
  return Buffer.concat([bytes.subarray(0, at), Buffer.from(varint), bytes.subarray(end)]);
}

/** Applies one random mutation to the packets (some mutations target one packet, some the whole). */
function mutate(r: Rng, packets: Built[], steps: string[]): void {
  const i = r.int(packets.length);
  const p = packets[i]!;
  const b = Buffer.from(p.bytes);
  const kind = r.int(10);
  switch (kind) {
    case 0: {
      const n = 1 + r.int(8);
      for (let k = 0; k < n && b.length > 0; k++) b[r.int(b.length)]! ^= 1 << r.int(8);
      packets[i] = { ...p, bytes: b };
      steps.push(`bitflip x${n} in ${p.name}`);
      return;
    }
    case 1: {
      const at = r.int(b.length + 1);
      const n = 1 + r.int(16);
      packets[i] = { ...p, bytes: Buffer.concat([b.subarray(0, at), r.bytes(n), b.subarray(at)]) };
      steps.push(`insert ${n} at ${at} in ${p.name}`);
      return;
    }
    case 2: {
      const at = r.int(b.length);
      const n = 1 + r.int(16);
      packets[i] = { ...p, bytes: Buffer.concat([b.subarray(0, at), b.subarray(at + n)]) };
      steps.push(`delete ${n} at ${at} in ${p.name}`);
      return;
    }
    case 3: {
      const at = r.int(b.length);
      packets[i] = { ...p, bytes: b.subarray(0, at) };
      packets.length = i + 1; // nothing after a truncated packet would parse anyway
      steps.push(`truncate ${p.name} at ${at}`);
      return;
    }
    case 4: {
      const v = r.pick(BAD_VARINTS);
      packets[i] = { ...p, bytes: replaceVarint(b, 1, v) };
      steps.push(`remaining length ${Buffer.from(v).toString('hex')} in ${p.name}`);
      return;
    }
    case 5: {
      if (p.propsAt === undefined || p.propsAt >= b.length) return mutate(r, packets, steps);
      const v = r.pick(BAD_VARINTS);
      packets[i] = { ...p, bytes: replaceVarint(b, p.propsAt, v) };
      steps.push(`property length ${Buffer.from(v).toString('hex')} in ${p.name}`);
      return;
    }
    case 6: {
      if (b.length === 0) return;
      // First byte: a reserved type (0, 15), wrong flags, or any byte at all.
      b[0] = r.pick([0x00, 0xf0, (b[0]! & 0xf0) | (1 + r.int(15)), r.int(256)]);
      packets[i] = { ...p, bytes: b };
      steps.push(`first byte ${b[0]!.toString(16)} in ${p.name}`);
      return;
    }
    case 7: {
      const n = 2 + r.int(r.chance(0.1) ? 300 : 20);
      packets.splice(i, 1, ...Array.from({ length: n }, () => p));
      steps.push(`repeat ${p.name} x${n}`);
      return;
    }
    case 8: {
      if (b.length === 0) return;
      const at = r.int(b.length);
      b.fill(r.pick([0x00, 0xff, 0x80]), at, Math.min(b.length, at + 1 + r.int(8)));
      packets[i] = { ...p, bytes: b };
      steps.push(`overwrite at ${at} in ${p.name}`);
      return;
    }
    default: {
      const junk = r.bytes(1 + r.int(64));
      packets.splice(r.int(packets.length + 1), 0, { name: 'junk', bytes: junk });
      steps.push(`junk ${junk.length} B`);
    }
  }
}

/** Splits `n` bytes into chunk sizes: random pieces, or single bytes (slowloris). */
function chunking(r: Rng, n: number, delivery: Delivery): number[] {
  if (delivery === 'whole') return [n];
  const out: number[] = [];
  let left = n;
  while (left > 0) {
    const size = delivery === 'slowloris' ? 1 : Math.min(left, 1 + r.int(32));
    out.push(size);
    left -= size;
  }
  return out;
}

/** Case `index` of the run seeded `seed`. */
export function fuzzCase(seed: number, index: number): FuzzCase {
  const caseSeed = caseSeedOf(seed, index);
  const r = new Rng(caseSeed);
  const version = r.pick([3, 4, 5, 5] as const);
  const builder = new PacketBuilder(r, version, true);
  const roll = r.next();
  const preamble: Preamble = roll < 0.2 ? 'none' : roll < 0.75 ? 'connect-wait' : 'connect-pipelined';
  const steps: string[] = [];
  const packets: Built[] = [];
  if (preamble === 'none') packets.push(builder.connect());
  for (let n = preamble === 'none' ? r.int(3) : 1 + r.int(5); n > 0; n--)
    packets.push(builder.build(r.pick(AFTER_CONNECT)));
  steps.push(packets.map((p) => p.name).join('+'));
  let body: Buffer;
  if (r.chance(0.05)) {
    body = r.bytes(1 + r.int(512));
    steps.push('random bytes');
  } else {
    // 10 % stay valid: legal packets in odd orders (PUBREL for nothing, SUBSCRIBE storms).
    const mutations = r.chance(0.1) ? 0 : 1 + r.int(3);
    for (let m = 0; m < mutations && packets.length > 0; m++) mutate(r, packets, steps);
    body = Buffer.concat(packets.map((p) => p.bytes));
  }
  const dRoll = r.next();
  const delivery: Delivery = dRoll < 0.8 ? 'whole' : dRoll < 0.97 ? 'chunked' : 'slowloris';
  // Slowloris dribbles its first 256 bytes and no more, so one case stays under a few seconds.
  if (delivery === 'slowloris' && body.length > 256) body = body.subarray(0, 256);
  return {
    index,
    caseSeed,
    version,
    preamble,
    connect: preamble === 'none' ? undefined : new PacketBuilder(r, version, false).connect().bytes,
    body,
    delivery,
    chunks: chunking(r, body.length, delivery),
    gapMs: delivery === 'slowloris' ? 2 + r.int(15) : 0,
    ending: r.pick(['end', 'reset', 'destroy'] as const),
    steps,
  };
}
