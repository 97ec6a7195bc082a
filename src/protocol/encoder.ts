/**
 * Encoder: one packet object to one Buffer of exact size (sizes computed first, then written).
 *
 * Fan-out support: a PUBLISH is encoded once per variant and the same bytes written to every
 * subscriber; for QoS > 0 `withPacketId` copies those bytes and patches the 2-byte packet id
 * in place, so no subscriber costs a re-encode.
 *
 * v5-only fields are written only for version 5; v5 acks use the short form (no reason code,
 * no properties) when the reason is Success and there are no properties (section 3.4.2.1).
 * The encoder trusts its input types but refuses strings MQTT cannot carry (RangeError).
 */
import { PacketTypeCode, type ProtocolVersion, type QoS } from './constants.ts';
import type {
  AuthPacket,
  ConnackPacket,
  ConnectPacket,
  DisconnectPacket,
  Packet,
  Properties,
  PubackPacket,
  PublishPacket,
  SubackPacket,
  SubscribePacket,
  UnsubackPacket,
  UnsubscribePacket,
} from './packets.ts';
import {
  propertiesLength,
  varintLength,
  writeBinary,
  writeProperties,
  writeString,
  writeVarint,
} from './properties.ts';

const PINGREQ = Buffer.from([0xc0, 0x00]);
const PINGRESP = Buffer.from([0xd0, 0x00]);
const DISCONNECT_V3 = Buffer.from([0xe0, 0x00]);

export function encode(packet: Packet, version: ProtocolVersion): Buffer {
  switch (packet.type) {
    case 'publish':
      return encodePublish(packet, version);
    case 'puback':
    case 'pubrec':
    case 'pubrel':
    case 'pubcomp':
      return encodeAck(packet, version);
    case 'connect':
      return encodeConnect(packet);
    case 'connack':
      return encodeConnack(packet, version);
    case 'subscribe':
      return encodeSubscribe(packet, version);
    case 'suback':
      return encodeSuback(packet, version);
    case 'unsubscribe':
      return encodeUnsubscribe(packet, version);
    case 'unsuback':
      return encodeUnsuback(packet, version);
    case 'pingreq':
      return PINGREQ;
    case 'pingresp':
      return PINGRESP;
    case 'disconnect':
      return encodeDisconnect(packet, version);
    case 'auth':
      return encodeAuth(packet);
  }
}

/**
 * Allocates the packet and writes its fixed header; the body starts at `bodyStart(buf, bodyLength)`.
 * (No [buffer, offset] pair: that would be one more allocation per packet on the hot path.)
 */
function start(first: number, bodyLength: number): Buffer {
  const buf = Buffer.allocUnsafe(1 + varintLength(bodyLength) + bodyLength);
  buf[0] = first;
  writeVarint(buf, 1, bodyLength);
  return buf;
}

/** Where the body of a packet from `start` begins. */
const bodyStart = (buf: Buffer, bodyLength: number): number => buf.length - bodyLength;

/** Length of a property block including its own length prefix, given its contents' length. */
const blockLength = (n: number): number => varintLength(n) + n;

function writeBlock(
  buf: Buffer,
  pos: number,
  contentLength: number,
  props: PublishPacket['properties'],
): number {
  pos = writeVarint(buf, pos, contentLength);
  return writeProperties(buf, pos, props);
}

export function encodePublish(p: PublishPacket, version: ProtocolVersion): Buffer {
  return encodePublishFields(
    p.topic,
    p.payload,
    p.qos,
    p.retain,
    p.dup,
    p.packetId ?? 0,
    p.properties,
    version,
  );
}

/**
 * A PUBLISH from its fields, without a packet object to build first (the delivery path's
 * form: one buffer per encode and nothing else allocated). `packetId` is ignored for QoS 0.
 */
export function encodePublishFields(
  topic: string,
  payload: Buffer,
  qos: QoS,
  retain: boolean,
  dup: boolean,
  packetId: number,
  properties: Properties | undefined,
  version: ProtocolVersion,
): Buffer {
  const topicLength = Buffer.byteLength(topic);
  const propsLength = version === 5 ? propertiesLength(properties) : 0;
  const body =
    2 + topicLength + (qos > 0 ? 2 : 0) + (version === 5 ? blockLength(propsLength) : 0) + payload.length;
  const first = 0x30 | (dup ? 0x08 : 0) | (qos << 1) | (retain ? 0x01 : 0);
  const buf = start(first, body);
  let pos = writeString(buf, bodyStart(buf, body), topic);
  if (qos > 0) {
    buf.writeUInt16BE(packetId, pos);
    pos += 2;
  }
  if (version === 5) pos = writeBlock(buf, pos, propsLength, properties);
  payload.copy(buf, pos);
  return buf;
}

/**
 * A copy of an encoded QoS > 0 PUBLISH with its packet id and DUP flag replaced.
 * `encoded` must come from encodePublish with qos > 0.
 */
export function withPacketId(encoded: Buffer, packetId: number, dup = false): Buffer {
  const copy = Buffer.allocUnsafe(encoded.length);
  encoded.copy(copy);
  let pos = 1;
  while (copy[pos++]! & 0x80);
  pos += 2 + copy.readUInt16BE(pos);
  copy.writeUInt16BE(packetId, pos);
  copy[0] = dup ? copy[0]! | 0x08 : copy[0]! & ~0x08;
  return copy;
}

function encodeAck(p: PubackPacket, version: ProtocolVersion): Buffer {
  const first = (PacketTypeCode[p.type] << 4) | (p.type === 'pubrel' ? 0x02 : 0);
  if (version !== 5 || (p.reasonCode === 0 && p.properties === undefined)) {
    const buf = start(first, 2);
    const pos = bodyStart(buf, 2);
    buf.writeUInt16BE(p.packetId, pos);
    return buf;
  }
  const propsLength = propertiesLength(p.properties);
  const withProps = propsLength > 0;
  const bodyLength = 3 + (withProps ? blockLength(propsLength) : 0);
  const buf = start(first, bodyLength);
  let pos = bodyStart(buf, bodyLength);
  buf.writeUInt16BE(p.packetId, pos);
  buf[pos + 2] = p.reasonCode;
  pos += 3;
  if (withProps) writeBlock(buf, pos, propsLength, p.properties);
  return buf;
}

function encodeConnect(p: ConnectPacket): Buffer {
  const v = p.protocolVersion;
  const five = v === 5;
  const name = p.protocolName || (v === 3 ? 'MQIsdp' : 'MQTT');
  const propsLength = five ? propertiesLength(p.properties) : 0;
  const willPropsLength = five && p.will ? propertiesLength(p.will.properties) : 0;
  let body = 2 + Buffer.byteLength(name) + 1 + 1 + 2 + (five ? blockLength(propsLength) : 0);
  body += 2 + Buffer.byteLength(p.clientId);
  if (p.will) {
    body +=
      (five ? blockLength(willPropsLength) : 0) +
      2 +
      Buffer.byteLength(p.will.topic) +
      2 +
      p.will.payload.length;
  }
  if (p.username !== undefined) body += 2 + Buffer.byteLength(p.username);
  if (p.password !== undefined) body += 2 + p.password.length;
  let flags = p.clean ? 0x02 : 0;
  if (p.will) flags |= 0x04 | (p.will.qos << 3) | (p.will.retain ? 0x20 : 0);
  if (p.password !== undefined) flags |= 0x40;
  if (p.username !== undefined) flags |= 0x80;
  const buf = start(0x10, body);
  let pos = bodyStart(buf, body);
  pos = writeString(buf, pos, name);
  buf[pos++] = v;
  buf[pos++] = flags;
  buf.writeUInt16BE(p.keepalive, pos);
  pos += 2;
  if (five) pos = writeBlock(buf, pos, propsLength, p.properties);
  pos = writeString(buf, pos, p.clientId);
  if (p.will) {
    if (five) pos = writeBlock(buf, pos, willPropsLength, p.will.properties);
    pos = writeString(buf, pos, p.will.topic);
    pos = writeBinary(buf, pos, p.will.payload);
  }
  if (p.username !== undefined) pos = writeString(buf, pos, p.username);
  if (p.password !== undefined) writeBinary(buf, pos, p.password);
  return buf;
}

function encodeConnack(p: ConnackPacket, version: ProtocolVersion): Buffer {
  const propsLength = version === 5 ? propertiesLength(p.properties) : 0;
  const bodyLength = 2 + (version === 5 ? blockLength(propsLength) : 0);
  const buf = start(0x20, bodyLength);
  let pos = bodyStart(buf, bodyLength);
  // MQTT 3.1 has no Session Present: its first byte is reserved, always 0 (3.1 section 3.2).
  buf[pos++] = p.sessionPresent && version !== 3 ? 1 : 0;
  buf[pos++] = p.reasonCode;
  if (version === 5) writeBlock(buf, pos, propsLength, p.properties);
  return buf;
}

function encodeSubscribe(p: SubscribePacket, version: ProtocolVersion): Buffer {
  const propsLength = version === 5 ? propertiesLength(p.properties) : 0;
  let body = 2 + (version === 5 ? blockLength(propsLength) : 0);
  for (const s of p.subscriptions) body += 3 + Buffer.byteLength(s.topicFilter);
  const buf = start(0x82, body);
  let pos = bodyStart(buf, body);
  buf.writeUInt16BE(p.packetId, pos);
  pos += 2;
  if (version === 5) pos = writeBlock(buf, pos, propsLength, p.properties);
  for (const s of p.subscriptions) {
    pos = writeString(buf, pos, s.topicFilter);
    let options = s.qos;
    if (version === 5) {
      options |= (s.noLocal ? 0x04 : 0) | (s.retainAsPublished ? 0x08 : 0) | (s.retainHandling << 4);
    }
    buf[pos++] = options;
  }
  return buf;
}

function encodeCodes(
  first: number,
  p: SubackPacket | UnsubackPacket,
  version: ProtocolVersion,
  withCodes: boolean,
): Buffer {
  const propsLength = version === 5 ? propertiesLength(p.properties) : 0;
  const codes = withCodes ? p.reasonCodes.length : 0;
  const bodyLength = 2 + (version === 5 ? blockLength(propsLength) : 0) + codes;
  const buf = start(first, bodyLength);
  let pos = bodyStart(buf, bodyLength);
  buf.writeUInt16BE(p.packetId, pos);
  pos += 2;
  if (version === 5) pos = writeBlock(buf, pos, propsLength, p.properties);
  for (let i = 0; i < codes; i++) buf[pos++] = p.reasonCodes[i]!;
  return buf;
}

const encodeSuback = (p: SubackPacket, version: ProtocolVersion): Buffer =>
  encodeCodes(0x90, p, version, true);
// The v3 UNSUBACK has no payload [MQTT-3.11.3] (3.1.1).
const encodeUnsuback = (p: UnsubackPacket, version: ProtocolVersion): Buffer =>
  encodeCodes(0xb0, p, version, version === 5);

function encodeUnsubscribe(p: UnsubscribePacket, version: ProtocolVersion): Buffer {
  const propsLength = version === 5 ? propertiesLength(p.properties) : 0;
  let body = 2 + (version === 5 ? blockLength(propsLength) : 0);
  for (const f of p.topicFilters) body += 2 + Buffer.byteLength(f);
  const buf = start(0xa2, body);
  let pos = bodyStart(buf, body);
  buf.writeUInt16BE(p.packetId, pos);
  pos += 2;
  if (version === 5) pos = writeBlock(buf, pos, propsLength, p.properties);
  for (const f of p.topicFilters) pos = writeString(buf, pos, f);
  return buf;
}

/**
 * DISCONNECT and AUTH share a shape: reason code then properties, both omittable when empty.
 * Only DISCONNECT may also drop the Property Length alone (section 3.14.2.2.1); an AUTH that
 * carries a reason code carries the Property Length too (section 3.15.2.1).
 */
function encodeReasonPacket(
  first: number,
  reasonCode: number,
  props: DisconnectPacket['properties'],
): Buffer {
  const propsLength = propertiesLength(props);
  if (propsLength === 0) {
    if (reasonCode === 0) return Buffer.from([first, 0]);
    return first === 0xe0 ? Buffer.from([first, 1, reasonCode]) : Buffer.from([first, 2, reasonCode, 0]);
  }
  const bodyLength = 1 + blockLength(propsLength);
  const buf = start(first, bodyLength);
  let pos = bodyStart(buf, bodyLength);
  buf[pos++] = reasonCode;
  writeBlock(buf, pos, propsLength, props);
  return buf;
}

function encodeDisconnect(p: DisconnectPacket, version: ProtocolVersion): Buffer {
  if (version !== 5) return DISCONNECT_V3;
  return encodeReasonPacket(0xe0, p.reasonCode, p.properties);
}

const encodeAuth = (p: AuthPacket): Buffer => encodeReasonPacket(0xf0, p.reasonCode, p.properties);
