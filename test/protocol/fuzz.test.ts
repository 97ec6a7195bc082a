/**
 * Seeded fuzzing of the Parser. Inputs are random bytes and valid packets (random content, every
 * type and version) mutated by bit flips, truncation, inserted and deleted bytes, rewritten
 * lengths and swapped property identifiers, pushed in random chunk splits to client-side parsers
 * of versions 3, 4 and 5 and to server-side parsers that learn the version from a CONNECT.
 *
 * Invariants checked on every push: it never throws; it returns null or a ProtocolError whose
 * reason code is 0x81, 0x82, 0x84 or 0x95, and after an error the same error forever;
 * bufferedBytes never exceeds maximumPacketSize. Every packet the parser yields re-encodes to
 * bytes that parse back to the same packet. A failure names the seed and the input's hex.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  encode,
  type Packet,
  type PacketType,
  PacketTypeName,
  Parser,
  type Properties,
  ProtocolError,
  type ProtocolVersion,
  type QoS,
  ValidReasonCodes,
} from '../../src/protocol/index.ts';
import { Rng } from '../helpers/rng.ts';
import { varint } from '../helpers/wire.ts';

const SEED = 0x6d717474;
const ALLOWED_CODES = new Set([0x81, 0x82, 0x84, 0x95]);
const VERSIONS: ProtocolVersion[] = [3, 4, 5];

/** A random string of up to `max` characters from ALPHABET. */
function randomString(rng: Rng, max = 8): string {
  let s = '';
  for (let n = rng.int(max + 1); n > 0; n--) s += rng.pick(ALPHABET);
  return s;
}
const ALPHABET = ['a', 'b', 'z', '/', '+', '#', '$', ' ', 'ü', '日', '😀'];

// ---- random valid packets ----

type Gen = (r: Rng) => Properties[keyof Properties];
const u16 = (r: Rng) => r.int(0x10000);
const u32 = (r: Rng) => r.int(2 ** 32);
const bit = (r: Rng) => r.int(2);
const str = (r: Rng) => randomString(r);
const bin = (r: Rng) => r.bytes(r.int(12));
const VALUE: Record<keyof Properties, Gen> = {
  payloadFormatIndicator: bit,
  messageExpiryInterval: u32,
  contentType: str,
  responseTopic: str,
  correlationData: bin,
  subscriptionIdentifiers: (r) => Array.from({ length: 1 + r.int(2) }, () => 1 + r.int(268_435_455)),
  sessionExpiryInterval: u32,
  assignedClientIdentifier: str,
  serverKeepAlive: u16,
  authenticationMethod: str,
  authenticationData: bin,
  requestProblemInformation: bit,
  willDelayInterval: u32,
  requestResponseInformation: bit,
  responseInformation: str,
  serverReference: str,
  reasonString: str,
  receiveMaximum: (r) => 1 + r.int(0xffff),
  topicAliasMaximum: u16,
  topicAlias: (r) => 1 + r.int(0xffff),
  maximumQoS: bit,
  retainAvailable: bit,
  userProperties: (r) =>
    Array.from({ length: 1 + r.int(3) }, () => [randomString(r), randomString(r)] as [string, string]),
  maximumPacketSize: (r) => 1 + r.int(2 ** 32 - 1),
  wildcardSubscriptionAvailable: bit,
  subscriptionIdentifierAvailable: bit,
  sharedSubscriptionAvailable: bit,
};
const PROPERTY_IDS = [
  0x01, 0x02, 0x03, 0x08, 0x09, 0x0b, 0x11, 0x12, 0x13, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1c, 0x1f, 0x21,
  0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a,
];

type Key = keyof Properties;
const ALLOWED_PROPERTIES: Record<string, Key[]> = {
  connect: [
    'sessionExpiryInterval',
    'authenticationMethod',
    'authenticationData',
    'requestProblemInformation',
    'requestResponseInformation',
    'receiveMaximum',
    'topicAliasMaximum',
    'userProperties',
    'maximumPacketSize',
  ],
  will: [
    'payloadFormatIndicator',
    'messageExpiryInterval',
    'contentType',
    'responseTopic',
    'correlationData',
    'willDelayInterval',
    'userProperties',
  ],
  connack: [
    'sessionExpiryInterval',
    'assignedClientIdentifier',
    'serverKeepAlive',
    'authenticationMethod',
    'authenticationData',
    'responseInformation',
    'serverReference',
    'reasonString',
    'receiveMaximum',
    'topicAliasMaximum',
    'maximumQoS',
    'retainAvailable',
    'userProperties',
    'maximumPacketSize',
    'wildcardSubscriptionAvailable',
    'subscriptionIdentifierAvailable',
    'sharedSubscriptionAvailable',
  ],
  publish: [
    'payloadFormatIndicator',
    'messageExpiryInterval',
    'contentType',
    'responseTopic',
    'correlationData',
    'subscriptionIdentifiers',
    'topicAlias',
    'userProperties',
  ],
  ack: ['reasonString', 'userProperties'],
  unsubscribe: ['userProperties'],
  disconnect: ['sessionExpiryInterval', 'reasonString', 'serverReference', 'userProperties'],
  auth: ['authenticationMethod', 'authenticationData', 'reasonString', 'userProperties'],
};

/** A random property block for `where`, or nothing (never an empty object: it parses as absent). */
function props(r: Rng, version: ProtocolVersion, where: string, only?: Key[]): { properties?: Properties } {
  if (version !== 5 || r.int(3) === 0) return {};
  const out: Record<string, unknown> = {};
  for (const key of only ?? ALLOWED_PROPERTIES[where]!) if (r.int(3) === 0) out[key] = VALUE[key](r);
  return Object.keys(out).length > 0 ? { properties: out as Properties } : {};
}

const qos = (r: Rng) => r.int(3) as QoS;
const id = (r: Rng) => 1 + r.int(0xffff);
const code = (r: Rng, type: string) => r.pick([...ValidReasonCodes[type]!]);

function randomPacket(r: Rng, v: ProtocolVersion): Packet {
  const five = v === 5;
  // Every packet type, in type-code order (so a seed keeps its sequence); AUTH exists only in v5.
  const types = PacketTypeName.filter((t): t is PacketType => t !== undefined && (five || t !== 'auth'));
  const type = r.pick(types);
  switch (type) {
    case 'connect': {
      const username = r.bool() ? { username: randomString(r) } : {};
      const password = (five || 'username' in username) && r.bool() ? { password: r.bytes(r.int(6)) } : {};
      const will = r.bool()
        ? {
            will: {
              topic: randomString(r),
              payload: r.bytes(r.int(20)),
              qos: qos(r),
              retain: r.bool(),
              ...props(r, v, 'will'),
            },
          }
        : {};
      return {
        type,
        protocolName: v === 3 ? 'MQIsdp' : 'MQTT',
        protocolVersion: v,
        clean: r.bool(),
        keepalive: u16(r),
        clientId: randomString(r),
        ...props(r, v, 'connect'),
        ...will,
        ...username,
        ...password,
      };
    }
    case 'connack':
      return {
        type,
        sessionPresent: r.bool() && v !== 3, // 3.1 has no Session Present
        reasonCode: five ? code(r, type) : r.int(6),
        ...props(r, v, type),
      };
    case 'publish': {
      const q = qos(r);
      const payload = r.bytes(r.pick([0, 1, r.int(200), r.int(5000)]));
      return {
        type,
        topic: randomString(r),
        payload,
        qos: q,
        retain: r.bool(),
        dup: q > 0 && r.bool(),
        ...(q > 0 ? { packetId: id(r) } : {}),
        ...props(r, v, type),
      };
    }
    case 'puback':
    case 'pubrec':
    case 'pubrel':
    case 'pubcomp':
      return {
        type,
        packetId: id(r),
        reasonCode: five && r.bool() ? code(r, type) : 0,
        ...props(r, v, 'ack'),
      };
    case 'subscribe': {
      const subscriptions = Array.from({ length: 1 + r.int(3) }, () => ({
        topicFilter: randomString(r),
        qos: qos(r),
        noLocal: five && r.bool(),
        retainAsPublished: five && r.bool(),
        retainHandling: (five ? r.int(3) : 0) as 0 | 1 | 2,
      }));
      const sid = props(r, v, type, ['subscriptionIdentifiers', 'userProperties']);
      sid.properties?.subscriptionIdentifiers?.splice(1); // one identifier at most in SUBSCRIBE
      return { type, packetId: id(r), subscriptions, ...sid };
    }
    case 'suback': {
      const codes = Array.from({ length: 1 + r.int(4) }, () =>
        five ? code(r, type) : r.pick([0, 1, 2, 0x80]),
      );
      return { type, packetId: id(r), reasonCodes: codes, ...props(r, v, 'ack') };
    }
    case 'unsubscribe':
      return {
        type,
        packetId: id(r),
        topicFilters: Array.from({ length: 1 + r.int(3) }, () => randomString(r)),
        ...props(r, v, type),
      };
    case 'unsuback': {
      const codes = five ? Array.from({ length: r.int(4) }, () => code(r, type)) : [];
      return { type, packetId: id(r), reasonCodes: codes, ...props(r, v, 'ack') };
    }
    case 'pingreq':
    case 'pingresp':
      return { type };
    default:
      return {
        type: type as 'disconnect' | 'auth',
        reasonCode: five && r.bool() ? code(r, type) : 0,
        ...props(r, v, type),
      };
  }
}

// ---- mutations ----

function mutate(r: Rng, input: Buffer): Buffer {
  const b = Buffer.from(input);
  const at = (extra = 0) => r.int(b.length + extra);
  switch (r.int(7)) {
    case 0: // bit flips
      for (let n = 1 + r.int(4); n > 0 && b.length > 0; n--) b[at()]! ^= 1 << r.int(8);
      return b;
    case 1: // truncation
      return b.subarray(0, at());
    case 2: {
      const pos = at(1);
      return Buffer.concat([b.subarray(0, pos), r.bytes(1 + r.int(8)), b.subarray(pos)]);
    }
    case 3: {
      const pos = at();
      return Buffer.concat([b.subarray(0, pos), b.subarray(pos + 1 + r.int(8))]);
    }
    case 4: {
      // Remaining length rewritten: off by a little, anything, non-minimal, or five bytes long.
      let end = 1;
      while (end < b.length && end < 5 && b[end]! & 0x80) end++;
      const length = b.length - end - 1;
      const choice = r.int(4);
      const header =
        choice === 0
          ? varint(Math.max(0, length + r.int(7) - 3))
          : choice === 1
            ? varint(r.int(268_435_456))
            : choice === 2
              ? [...varint(length).map((x) => x | 0x80), 0]
              : [0xff, 0xff, 0xff, 0xff, 0x7f];
      return Buffer.concat([b.subarray(0, 1), Buffer.from(header), b.subarray(end + 1)]);
    }
    case 5: {
      // A two-byte length or identifier field overwritten.
      if (b.length >= 4) b.writeUInt16BE(r.pick([0, 1, 0xffff, r.int(0x10000)]), 2 + r.int(b.length - 3));
      return b;
    }
    default: {
      // A byte that could be a property identifier swapped for another identifier.
      const spots = [...b.keys()].filter((i) => i > 1 && PROPERTY_IDS.includes(b[i]!));
      if (spots.length > 0) b[r.pick(spots)] = r.pick(PROPERTY_IDS);
      return b;
    }
  }
}

function split(r: Rng, input: Buffer): Buffer[] {
  if (input.length === 0) return [input];
  if (r.int(10) === 0) return [...input].map((x) => Buffer.from([x]));
  const cuts = Array.from({ length: r.int(Math.min(6, input.length)) }, () => r.int(input.length)).sort(
    (a, b) => a - b,
  );
  return [0, ...cuts].map((start, i) => input.subarray(start, [...cuts, input.length][i]));
}

// ---- the harness ----

interface Stats {
  inputs: number;
  packets: number;
  codes: Map<number, number>;
}
const newStats = (): Stats => ({ inputs: 0, packets: 0, codes: new Map() });

/** Every yielded packet re-encodes to bytes that parse back to the same packet. */
function assertReencodes(packet: Packet, version: ProtocolVersion): void {
  const again: Packet[] = [];
  const err = new Parser({ protocolVersion: version }).push(encode(packet, version), (p) => {
    again.push(p);
  });
  assert.equal(err, null);
  assert.deepEqual(again, [packet]);
}

/** Pushes chunks to parser checking every invariant; `what` describes the input for a failure. */
function feed(
  parser: Parser,
  chunks: Buffer[],
  max: number | undefined,
  stats: Stats,
  what: () => string,
  onPacket?: (p: Packet, version: ProtocolVersion) => void,
): void {
  let error: ProtocolError | null = null;
  for (const chunk of chunks) {
    let result: ProtocolError | null;
    try {
      result = parser.push(chunk, (p) => {
        stats.packets++;
        onPacket?.(p, parser.protocolVersion);
        assertReencodes(p, parser.protocolVersion);
      });
    } catch (cause) {
      throw new Error(`push threw on ${what()}`, { cause });
    }
    if (error !== null) {
      assert.equal(result, error, `a dead parser returns its first error (${what()})`);
    } else if (result !== null) {
      assert.ok(result instanceof ProtocolError, what());
      assert.ok(
        ALLOWED_CODES.has(result.reasonCode),
        `reason code 0x${result.reasonCode.toString(16)} on ${what()}`,
      );
      stats.codes.set(result.reasonCode, (stats.codes.get(result.reasonCode) ?? 0) + 1);
      error = result;
    }
    assert.ok(
      parser.bufferedBytes <= (max ?? Number.POSITIVE_INFINITY),
      `bufferedBytes over ${max} on ${what()}`,
    );
  }
}

const MAXIMA = [undefined, 4096, 64] as const;

function runClientSide(r: Rng, input: Buffer, stats: Stats, label: string): void {
  stats.inputs++;
  for (const version of VERSIONS) {
    const max = r.pick(MAXIMA);
    const parser = new Parser({ protocolVersion: version, ...(max ? { maximumPacketSize: max } : {}) });
    feed(
      parser,
      split(r, input),
      max,
      stats,
      () => `${label} v${version} max ${max} input ${input.toString('hex')}`,
    );
  }
}

function summary(stats: Stats): string {
  const codes = [...stats.codes].map(([c, n]) => `0x${c.toString(16)}:${n}`).join(' ');
  return `${stats.inputs} inputs, ${stats.packets} packets, errors ${codes}`;
}

describe(`parser fuzz (seed 0x${SEED.toString(16)})`, () => {
  test(`unmutated random packets round-trip exactly (seed 0x${SEED.toString(16)})`, () => {
    const r = new Rng(SEED);
    for (let i = 0; i < 3000; i++) {
      const version = r.pick(VERSIONS);
      const packet = randomPacket(r, version);
      const out: Packet[] = [];
      const parser = new Parser({ protocolVersion: version });
      for (const chunk of split(r, encode(packet, version))) {
        assert.equal(
          parser.push(chunk, (p) => {
            out.push(p);
          }),
          null,
        );
      }
      assert.deepEqual(out, [packet], `case ${i}`);
    }
  });

  test(`random bytes (seed 0x${(SEED + 1).toString(16)})`, (t) => {
    const r = new Rng(SEED + 1);
    const stats = newStats();
    for (let i = 0; i < 6000; i++) {
      const input = r.bytes(r.int(r.bool() ? 8 : 200));
      // Half the time start with a plausible fixed header so bodies get decoded, not just headers.
      if (input.length > 1 && r.bool()) {
        input[0] = ((1 + r.int(15)) << 4) | (r.bool() ? 0 : r.int(16));
        input[1] = r.int(Math.min(input.length - 1, 128)); // a short remaining length
      }
      runClientSide(r, input, stats, `random #${i}`);
    }
    t.diagnostic(summary(stats));
    assert.equal(stats.inputs, 6000);
  });

  test(`mutated valid packets (seed 0x${(SEED + 2).toString(16)})`, (t) => {
    const r = new Rng(SEED + 2);
    const stats = newStats();
    for (let i = 0; i < 10_000; i++) {
      const version = r.pick(VERSIONS);
      const packets = Array.from({ length: 1 + r.int(3) }, () => encode(randomPacket(r, version), version));
      const victim = r.int(packets.length);
      for (let n = 1 + r.int(2); n > 0; n--) packets[victim] = mutate(r, packets[victim]!);
      runClientSide(r, Buffer.concat(packets), stats, `mutated #${i}`);
    }
    t.diagnostic(summary(stats));
    for (const c of [0x81, 0x82, 0x95])
      assert.ok(stats.codes.has(c), `no input produced 0x${c.toString(16)}`);
    assert.ok(stats.packets > 10_000, 'most mutations leave some packets decodable');
  });

  test(`server-side parsers learn the version from a CONNECT (seed 0x${(SEED + 3).toString(16)})`, (t) => {
    const r = new Rng(SEED + 3);
    const stats = newStats();
    for (let i = 0; i < 6000; i++) {
      const version = r.pick(VERSIONS);
      let connect = randomPacket(r, version);
      while (connect.type !== 'connect') connect = randomPacket(r, version);
      const after = Array.from({ length: r.int(4) }, () => encode(randomPacket(r, version), version));
      // Either the CONNECT or a later packet is damaged, or (now and then) nothing is.
      const parts = [encode(connect, version), ...after];
      const victim = r.int(parts.length + Math.ceil(parts.length / 3));
      if (victim < parts.length) parts[victim] = mutate(r, parts[victim]!);
      const max = r.pick([undefined, 4096]);
      const parser = new Parser(max ? { maximumPacketSize: max } : {});
      const input = Buffer.concat(parts);
      stats.inputs++;
      let first = true;
      const learned = (p: Packet, v: ProtocolVersion) => {
        if (first && victim !== 0) assert.deepEqual([p.type, v], ['connect', version], 'version learned');
        first = false;
      };
      const what = () => `server #${i} v${version} input ${input.toString('hex')}`;
      feed(parser, split(r, input), max, stats, what, learned);
    }
    t.diagnostic(summary(stats));
    assert.ok(stats.codes.has(0x84), 'a damaged protocol level is refused with 0x84');
  });
});
