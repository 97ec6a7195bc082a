/**
 * MQTT 5.0 properties (section 2.2.2): the table of identifiers with their data type and the
 * packets that may carry them, and their decoding and encoding.
 *
 * Decoding rules enforced here:
 * - an identifier unknown or not allowed in this packet is malformed (0x81) (section 2.2.2.2);
 * - a property other than User Property or (in PUBLISH) Subscription Identifier appearing
 *   twice is a protocol error (0x82) (each property's definition in section 3);
 * - values outside their range (a 0 Receive Maximum, a Payload Format Indicator of 2, ...) are
 *   protocol errors (0x82), each with its statement id below;
 * - a block longer than `maxPropertiesBytes` is refused from its length alone, and one with more
 *   than `maxUserProperties` pairs at the first pair past it (Reader.limits): 0x95, before the
 *   rest is built, so a packet of 10,000 pairs costs what its first few cost.
 */
import { MAX_VARIABLE_BYTE_INTEGER } from './constants.ts';
import type { Properties } from './packets.ts';
import { malformed, overLimit, type ProtocolError, protocolError } from './protocol-error.ts';
import type { Reader } from './reader.ts';
import { isValidMqttString } from './utf8.ts';

type DataType = 'byte' | 'u16' | 'u32' | 'varint' | 'utf8' | 'binary' | 'pair';

/** Bits naming where a property may appear: the packet type code, plus WILL for will properties. */
export const WILL = 16;

interface PropertyDef {
  id: number;
  key: keyof Properties;
  type: DataType;
  /** Packet type codes (and WILL) allowed to carry it. */
  allowed: number;
}

const bits = (...codes: number[]): number => codes.reduce((m, c) => m | (1 << c), 0);
const [CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK] =
  [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
const [DISCONNECT, AUTH] = [14, 15];

const DEFS: PropertyDef[] = [
  { id: 0x01, key: 'payloadFormatIndicator', type: 'byte', allowed: bits(PUBLISH, WILL) },
  { id: 0x02, key: 'messageExpiryInterval', type: 'u32', allowed: bits(PUBLISH, WILL) },
  { id: 0x03, key: 'contentType', type: 'utf8', allowed: bits(PUBLISH, WILL) },
  { id: 0x08, key: 'responseTopic', type: 'utf8', allowed: bits(PUBLISH, WILL) },
  { id: 0x09, key: 'correlationData', type: 'binary', allowed: bits(PUBLISH, WILL) },
  { id: 0x0b, key: 'subscriptionIdentifiers', type: 'varint', allowed: bits(PUBLISH, SUBSCRIBE) },
  { id: 0x11, key: 'sessionExpiryInterval', type: 'u32', allowed: bits(CONNECT, CONNACK, DISCONNECT) },
  { id: 0x12, key: 'assignedClientIdentifier', type: 'utf8', allowed: bits(CONNACK) },
  { id: 0x13, key: 'serverKeepAlive', type: 'u16', allowed: bits(CONNACK) },
  { id: 0x15, key: 'authenticationMethod', type: 'utf8', allowed: bits(CONNECT, CONNACK, AUTH) },
  { id: 0x16, key: 'authenticationData', type: 'binary', allowed: bits(CONNECT, CONNACK, AUTH) },
  { id: 0x17, key: 'requestProblemInformation', type: 'byte', allowed: bits(CONNECT) },
  { id: 0x18, key: 'willDelayInterval', type: 'u32', allowed: bits(WILL) },
  { id: 0x19, key: 'requestResponseInformation', type: 'byte', allowed: bits(CONNECT) },
  { id: 0x1a, key: 'responseInformation', type: 'utf8', allowed: bits(CONNACK) },
  { id: 0x1c, key: 'serverReference', type: 'utf8', allowed: bits(CONNACK, DISCONNECT) },
  {
    id: 0x1f,
    key: 'reasonString',
    type: 'utf8',
    allowed: bits(CONNACK, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK, DISCONNECT, AUTH),
  },
  { id: 0x21, key: 'receiveMaximum', type: 'u16', allowed: bits(CONNECT, CONNACK) },
  { id: 0x22, key: 'topicAliasMaximum', type: 'u16', allowed: bits(CONNECT, CONNACK) },
  { id: 0x23, key: 'topicAlias', type: 'u16', allowed: bits(PUBLISH) },
  { id: 0x24, key: 'maximumQoS', type: 'byte', allowed: bits(CONNACK) },
  { id: 0x25, key: 'retainAvailable', type: 'byte', allowed: bits(CONNACK) },
  {
    id: 0x26,
    key: 'userProperties',
    type: 'pair',
    allowed: bits(
      CONNECT,
      CONNACK,
      PUBLISH,
      WILL,
      PUBACK,
      PUBREC,
      PUBREL,
      PUBCOMP,
      SUBSCRIBE,
      SUBACK,
      UNSUBSCRIBE,
      UNSUBACK,
      DISCONNECT,
      AUTH,
    ),
  },
  { id: 0x27, key: 'maximumPacketSize', type: 'u32', allowed: bits(CONNECT, CONNACK) },
  { id: 0x28, key: 'wildcardSubscriptionAvailable', type: 'byte', allowed: bits(CONNACK) },
  { id: 0x29, key: 'subscriptionIdentifierAvailable', type: 'byte', allowed: bits(CONNACK) },
  { id: 0x2a, key: 'sharedSubscriptionAvailable', type: 'byte', allowed: bits(CONNACK) },
];

const BY_ID: (PropertyDef | undefined)[] = [];
for (const d of DEFS) BY_ID[d.id] = d;

/** Properties whose only legal values are 0 and 1 (each a protocol error otherwise). */
const BOOLEAN_BYTES = new Set<keyof Properties>([
  'payloadFormatIndicator', // section 3.3.2.3.2
  'requestProblemInformation', // section 3.1.2.11.7
  'requestResponseInformation', // section 3.1.2.11.6
  'maximumQoS', // section 3.2.2.3.4
  'retainAvailable',
  'wildcardSubscriptionAvailable',
  'subscriptionIdentifierAvailable',
  'sharedSubscriptionAvailable',
]);

/**
 * Reads a property block (its length, then the properties) for a packet of type `where`
 * (a packet type code or WILL). Returns undefined when the block is empty.
 */
export function decodeProperties(r: Reader, where: number): Properties | undefined {
  const length = r.varint('property length');
  if (length === 0) return undefined;
  if (length > r.remaining()) throw malformed('property length exceeds packet');
  const end = r.pos + length;
  const limits = r.limits;
  if (length > limits.maxPropertiesBytes) {
    return refuseBlock(
      r,
      end,
      overLimit(
        'max_properties_bytes',
        `${length} bytes of properties; at most ${limits.maxPropertiesBytes}`,
      ),
    );
  }
  const props: Properties = {};
  const bit = 1 << where;
  let pairs = 0;
  while (r.pos < end) {
    const id = r.varint('property identifier');
    const def = BY_ID[id];
    if (def === undefined || (def.allowed & bit) === 0) {
      throw malformed(`property 0x${id.toString(16)} not allowed in this packet`); // section 2.2.2.2
    }
    const key = def.key;
    if (key === 'userProperties' && ++pairs > limits.maxUserProperties) {
      return refuseBlock(
        r,
        end,
        overLimit('max_user_properties', `more than ${limits.maxUserProperties} user properties`),
      );
    }
    const value = readValue(r, def);
    if (key === 'userProperties') {
      (props.userProperties ??= []).push(value as [string, string]);
    } else if (key === 'subscriptionIdentifiers') {
      const id = value as number;
      if (id === 0) throw protocolError('subscription identifier 0'); // sections 3.8.2.1.2, 3.3.2.3.8
      if (props.subscriptionIdentifiers !== undefined && where !== PUBLISH) {
        throw protocolError('subscription identifier given twice'); // section 3.8.2.1.2
      }
      (props.subscriptionIdentifiers ??= []).push(id);
    } else {
      if (props[key] !== undefined) throw protocolError(`property ${key} given twice`); // e.g. section 3.1.2.11.2
      if (BOOLEAN_BYTES.has(key) && (value as number) > 1) throw protocolError(`${key} must be 0 or 1`);
      if ((key === 'receiveMaximum' || key === 'maximumPacketSize') && value === 0) {
        throw protocolError(`${key} must not be 0`); // sections 3.1.2.11.3, 3.1.2.11.4
      }
      (props as Record<string, unknown>)[key] = value;
    }
  }
  if (r.pos !== end) throw malformed('property overran its block');
  return props;
}

/** A block over a bound: thrown, or (Reader.deferLimits) kept and the block skipped unread. */
function refuseBlock(r: Reader, end: number, error: ProtocolError): undefined {
  if (!r.deferLimits) throw error;
  r.overLimit ??= error;
  r.pos = end;
  return undefined;
}

function readValue(r: Reader, def: PropertyDef): unknown {
  switch (def.type) {
    case 'byte':
      return r.u8(def.key);
    case 'u16':
      return r.u16(def.key);
    case 'u32':
      return r.u32(def.key);
    case 'varint':
      return r.varint(def.key);
    case 'utf8':
      return r.utf8(def.key);
    case 'binary':
      return r.binary(def.key);
    case 'pair':
      return [r.utf8('user property name'), r.utf8('user property value')];
  }
}

// ---- encoding ----

export function varintLength(n: number): number {
  return n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4;
}

const KEYS = DEFS.map((d) => d.key);
const DEF_BY_KEY = new Map(DEFS.map((d) => [d.key, d]));

/** Byte length of the encoded property block contents (without the length prefix). */
export function propertiesLength(props: Properties | undefined): number {
  if (props === undefined) return 0;
  let n = 0;
  for (const key of KEYS) {
    const v = props[key];
    if (v === undefined) continue;
    const def = DEF_BY_KEY.get(key)!;
    switch (def.type) {
      case 'byte':
        n += 2;
        break;
      case 'u16':
        n += 3;
        break;
      case 'u32':
        n += 5;
        break;
      case 'varint':
        for (const id of v as number[]) n += 1 + varintLength(id);
        break;
      case 'utf8':
        n += 3 + Buffer.byteLength(v as string);
        break;
      case 'binary':
        n += 3 + (v as Buffer).length;
        break;
      case 'pair':
        for (const [k, val] of v as [string, string][])
          n += 5 + Buffer.byteLength(k) + Buffer.byteLength(val);
        break;
    }
  }
  return n;
}

export function writeVarint(buf: Buffer, pos: number, n: number): number {
  if (n > MAX_VARIABLE_BYTE_INTEGER || n < 0)
    throw new RangeError(`variable byte integer out of range: ${n}`);
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    buf[pos++] = b;
  } while (n > 0);
  return pos;
}

export function writeString(buf: Buffer, pos: number, s: string): number {
  if (!isValidMqttString(s)) throw new RangeError('string contains U+0000 or a lone surrogate');
  const len = buf.write(s, pos + 2, 'utf8');
  if (len > 0xffff) throw new RangeError('string longer than 65535 bytes');
  buf.writeUInt16BE(len, pos);
  return pos + 2 + len;
}

export function writeBinary(buf: Buffer, pos: number, b: Buffer): number {
  if (b.length > 0xffff) throw new RangeError('binary data longer than 65535 bytes');
  buf.writeUInt16BE(b.length, pos);
  b.copy(buf, pos + 2);
  return pos + 2 + b.length;
}

/** Writes the property block contents (caller writes the length prefix). */
export function writeProperties(buf: Buffer, pos: number, props: Properties | undefined): number {
  if (props === undefined) return pos;
  for (const key of KEYS) {
    const v = props[key];
    if (v === undefined) continue;
    const def = DEF_BY_KEY.get(key)!;
    switch (def.type) {
      case 'byte':
        buf[pos++] = def.id;
        buf[pos++] = v as number;
        break;
      case 'u16':
        buf[pos++] = def.id;
        buf.writeUInt16BE(v as number, pos);
        pos += 2;
        break;
      case 'u32':
        buf[pos++] = def.id;
        buf.writeUInt32BE(v as number, pos);
        pos += 4;
        break;
      case 'varint':
        for (const id of v as number[]) {
          buf[pos++] = def.id;
          pos = writeVarint(buf, pos, id);
        }
        break;
      case 'utf8':
        buf[pos++] = def.id;
        pos = writeString(buf, pos, v as string);
        break;
      case 'binary':
        buf[pos++] = def.id;
        pos = writeBinary(buf, pos, v as Buffer);
        break;
      case 'pair':
        for (const [k, val] of v as [string, string][]) {
          buf[pos++] = def.id;
          pos = writeString(buf, pos, k);
          pos = writeString(buf, pos, val);
        }
        break;
    }
  }
  return pos;
}
