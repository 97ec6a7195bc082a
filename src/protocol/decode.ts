/**
 * Decoders for the body of each control packet, given its fixed header's first byte and the
 * byte range of its variable header and payload. Each enforces the packet's structural rules
 * (reserved flags, required fields, exact length) and cites the statement it enforces.
 * Errors are thrown as ProtocolError and caught by the Parser; nothing here does I/O.
 */
import { type ProtocolVersion, type QoS, ValidReasonCodes } from './constants.ts';
import type {
  AuthPacket,
  ConnackPacket,
  ConnectPacket,
  DisconnectPacket,
  Packet,
  PubackPacket,
  PublishPacket,
  SubackPacket,
  SubscribePacket,
  SubscriptionRequest,
  UnsubackPacket,
  UnsubscribePacket,
  WillMessage,
} from './packets.ts';
import { decodeProperties, WILL } from './properties.ts';
import { malformed, overLimit, ProtocolError, protocolError } from './protocol-error.ts';
import { NO_LIMITS, type PacketLimits, Reader } from './reader.ts';

/** Required low nibble of the fixed header for every type but PUBLISH (v3.1.1 [MQTT-2.2.2-1], [MQTT-2.2.2-2]; v5 [MQTT-2.1.3-1]). */
const REQUIRED_FLAGS = [-1, 0, 0, -1, 0, 0, 2, 0, 2, 0, 2, 0, 0, 0, 0, 0];

export function decodePacket(
  first: number,
  buf: Buffer,
  start: number,
  end: number,
  version: ProtocolVersion,
  limits: PacketLimits = NO_LIMITS,
): Packet {
  const code = first >> 4;
  const flags = first & 0x0f;
  if (code === 0) throw malformed('reserved packet type 0');
  if (code === 15 && version !== 5) throw malformed('AUTH packet before MQTT 5'); // v3.1.1: type 15 reserved
  const required = REQUIRED_FLAGS[code]!;
  if (required >= 0 && flags !== required && !isV31Retransmission(flags, required, version)) {
    throw malformed('invalid fixed header flags'); // [MQTT-2.2.2-2]
  }
  const r = new Reader(buf, start, end, limits);
  switch (code) {
    case 1:
      return decodeConnect(r);
    case 2:
      return decodeConnack(r, version);
    case 3:
      return decodePublish(r, flags, version);
    case 4:
      return decodeAck(r, 'puback', version);
    case 5:
      return decodeAck(r, 'pubrec', version);
    case 6:
      return decodeAck(r, 'pubrel', version);
    case 7:
      return decodeAck(r, 'pubcomp', version);
    case 8:
      return decodeSubscribe(r, version);
    case 9:
      return decodeSuback(r, version);
    case 10:
      return decodeUnsubscribe(r, version);
    case 11:
      return decodeUnsuback(r, version);
    case 12:
      expectEmpty(r);
      return { type: 'pingreq' };
    case 13:
      expectEmpty(r);
      return { type: 'pingresp' };
    case 14:
      return decodeDisconnect(r, version);
    default:
      return decodeAuth(r);
  }
}

/**
 * MQTT 3.1 (level 3) gave PUBREL, SUBSCRIBE and UNSUBSCRIBE a real QoS 1 header whose DUP bit a
 * client sets when it re-sends one (3.1 sections 3.6, 3.8, 3.10): flags 1010 instead of 0010.
 * 3.1.1 made those bits reserved and v5 kept them so ([MQTT-3.6.1-1], [MQTT-3.8.1-1],
 * [MQTT-3.10.1-1]): only a level 3 peer may send them.
 */
const DUP = 0x08;
const isV31Retransmission = (flags: number, required: number, version: ProtocolVersion): boolean =>
  version === 3 && required === 2 && flags === (required | DUP);

function expectEmpty(r: Reader): void {
  if (r.remaining() !== 0) throw malformed('unexpected bytes at end of packet');
}

function decodeConnect(r: Reader): ConnectPacket {
  const protocolName = r.utf8('protocol name');
  const level = r.u8('protocol level');
  if (protocolName !== 'MQTT' && protocolName !== 'MQIsdp') {
    throw malformed(`unknown protocol name ${JSON.stringify(protocolName)}`); // [MQTT-3.1.2-1]
  }
  // [MQTT-3.1.2-2]: answer with CONNACK 0x01 (v3) or 0x84 (v5) then close. A level above 5
  // comes from a client newer than v5, which reads the v5 CONNACK form.
  if (protocolName === 'MQTT' ? level !== 4 && level !== 5 : level !== 3) {
    throw new ProtocolError(0x84, `unsupported protocol level ${level}`, level > 5 ? 5 : 4);
  }
  const version = level as ProtocolVersion;
  const flags = r.u8('connect flags');
  if (flags & 0x01) throw malformed('reserved connect flag set'); // [MQTT-3.1.2-3]
  const clean = (flags & 0x02) !== 0;
  const willFlag = (flags & 0x04) !== 0;
  const willQos = (flags >> 3) & 0x03;
  const willRetain = (flags & 0x20) !== 0;
  const passwordFlag = (flags & 0x40) !== 0;
  const usernameFlag = (flags & 0x80) !== 0;
  if (willQos === 3) throw malformed('will QoS 3'); // [MQTT-3.1.2-14]
  if (!willFlag && (willQos !== 0 || willRetain)) {
    throw malformed('will QoS or retain set without will flag'); // [MQTT-3.1.2-11], [MQTT-3.1.2-13], [MQTT-3.1.2-15]
  }
  if (version !== 5 && passwordFlag && !usernameFlag) {
    throw malformed('password flag without user name flag'); // [MQTT-3.1.2-22] (v3.1.1)
  }
  const keepalive = r.u16('keep alive');
  // A CONNECT over a bound is read to its end (its broker must be known to count the refusal),
  // its over-bound blocks skipped unbuilt; the handler refuses it (CONNACK 0x95).
  r.deferLimits = true;
  const properties = version === 5 ? decodeProperties(r, 1) : undefined;
  const clientId = r.utf8('client identifier'); // [MQTT-3.1.3-3]
  const packet: ConnectPacket = {
    type: 'connect',
    protocolName,
    protocolVersion: version,
    clean,
    keepalive,
    clientId,
  };
  if (properties !== undefined) packet.properties = properties;
  if (willFlag) {
    const willStart = r.pos;
    const willProperties = version === 5 ? decodeProperties(r, WILL) : undefined;
    const will: WillMessage = {
      topic: r.utf8('will topic'),
      payload: r.binary('will payload'),
      qos: willQos as QoS,
      retain: willRetain,
    };
    if (willProperties !== undefined) will.properties = willProperties;
    packet.will = will;
    const willBytes = r.pos - willStart;
    if (willBytes > r.limits.maxWillBytes) {
      r.overLimit ??= overLimit(
        'max_will_bytes',
        `will of ${willBytes} bytes; at most ${r.limits.maxWillBytes}`,
      );
    }
  }
  if (usernameFlag) packet.username = r.utf8('user name');
  if (passwordFlag) packet.password = r.binary('password');
  expectEmpty(r);
  if (r.overLimit !== undefined) packet.overLimit = r.overLimit;
  return packet;
}

function decodeConnack(r: Reader, version: ProtocolVersion): ConnackPacket {
  const ackFlags = r.u8('connect acknowledge flags');
  if (ackFlags & 0xfe) throw malformed('reserved connack flags set'); // [MQTT-3.2.2-1]
  const reasonCode = r.u8('connect reason code');
  // 3.1 has no Session Present: its first byte is reserved, read as "no session" (3.1 section 3.2).
  const packet: ConnackPacket = {
    type: 'connack',
    sessionPresent: ackFlags === 1 && version !== 3,
    reasonCode,
  };
  if (version === 5) {
    if (!ValidReasonCodes.connack!.has(reasonCode)) throw malformed('invalid CONNACK reason code');
    const properties = decodeProperties(r, 2);
    if (properties !== undefined) packet.properties = properties;
  } else if (reasonCode > 5) {
    throw malformed('invalid CONNACK return code');
  }
  expectEmpty(r);
  return packet;
}

function decodePublish(r: Reader, flags: number, version: ProtocolVersion): PublishPacket {
  const qos = (flags >> 1) & 0x03;
  if (qos === 3) throw malformed('PUBLISH with QoS 3'); // [MQTT-3.3.1-4]
  const dup = (flags & 0x08) !== 0;
  if (dup && qos === 0) throw malformed('DUP set on a QoS 0 PUBLISH'); // [MQTT-3.3.1-2]
  const topic = r.utf8('topic name'); // [MQTT-3.3.2-1]
  const packet: PublishPacket = {
    type: 'publish',
    topic,
    payload: EMPTY,
    qos: qos as QoS,
    retain: (flags & 0x01) !== 0,
    dup,
  };
  if (qos > 0) {
    const id = r.u16('packet identifier');
    if (id === 0) throw malformed('packet identifier 0'); // [MQTT-2.2.1-3]
    packet.packetId = id;
  }
  if (version === 5) {
    const properties = decodeProperties(r, 3);
    if (properties !== undefined) packet.properties = properties;
  }
  packet.payload = r.rest();
  return packet;
}

const EMPTY = Buffer.alloc(0);

function decodeAck(r: Reader, type: PubackPacket['type'], version: ProtocolVersion): PubackPacket {
  const packetId = r.u16('packet identifier');
  if (packetId === 0) throw malformed('packet identifier 0'); // [MQTT-2.2.1-3]
  const packet: PubackPacket = { type, packetId, reasonCode: 0 };
  // v5: reason code and properties may be omitted when 0 and empty (section 3.4.2.1).
  if (version === 5 && r.remaining() > 0) {
    packet.reasonCode = r.u8('reason code');
    if (!ValidReasonCodes[type]!.has(packet.reasonCode)) throw malformed(`invalid ${type} reason code`);
    if (r.remaining() > 0) {
      const properties = decodeProperties(r, TYPE_CODE[type]);
      if (properties !== undefined) packet.properties = properties;
    }
  }
  expectEmpty(r);
  return packet;
}

const TYPE_CODE = { puback: 4, pubrec: 5, pubrel: 6, pubcomp: 7 } as const;

function decodeSubscribe(r: Reader, version: ProtocolVersion): SubscribePacket {
  const packetId = r.u16('packet identifier');
  if (packetId === 0) throw malformed('packet identifier 0'); // [MQTT-2.2.1-3]
  const packet: SubscribePacket = { type: 'subscribe', packetId, subscriptions: [] };
  if (version === 5) {
    const properties = decodeProperties(r, 8);
    if (properties !== undefined) packet.properties = properties;
  }
  const maxFilters = r.limits.maxFiltersPerSubscribe;
  while (r.remaining() > 0) {
    if (packet.subscriptions.length >= maxFilters) {
      throw overLimit('max_filters_per_subscribe', `more than ${maxFilters} topic filters in one SUBSCRIBE`);
    }
    const topicFilter = r.utf8('topic filter');
    const options = r.u8('subscription options');
    if (version === 5) {
      if (options & 0xc0) throw malformed('reserved subscription option bits set'); // [MQTT-3.8.3-5]
    } else if (options & 0xfc) {
      throw malformed('reserved subscription option bits set'); // [MQTT-3-8.3-4] (v3.1.1)
    }
    const qos = options & 0x03;
    if (qos === 3) {
      // v5 section 3.8.3.1: a Maximum QoS of 3 is a protocol error; v3.1.1: malformed [MQTT-3.8.3-4].
      throw version === 5 ? protocolError('requested QoS 3') : malformed('requested QoS 3');
    }
    const retainHandling = (options >> 4) & 0x03;
    if (retainHandling === 3) throw protocolError('retain handling 3'); // section 3.8.3.1
    const sub: SubscriptionRequest = {
      topicFilter,
      qos: qos as QoS,
      noLocal: (options & 0x04) !== 0,
      retainAsPublished: (options & 0x08) !== 0,
      retainHandling: retainHandling as 0 | 1 | 2,
    };
    packet.subscriptions.push(sub);
  }
  if (packet.subscriptions.length === 0) throw protocolError('SUBSCRIBE with no topic filters'); // [MQTT-3.8.3-3]
  return packet;
}

function decodeSuback(r: Reader, version: ProtocolVersion): SubackPacket {
  const packetId = r.u16('packet identifier');
  const packet: SubackPacket = { type: 'suback', packetId, reasonCodes: [] };
  if (version === 5) {
    const properties = decodeProperties(r, 9);
    if (properties !== undefined) packet.properties = properties;
  }
  while (r.remaining() > 0) {
    const code = r.u8('reason code');
    const valid = version === 5 ? ValidReasonCodes.suback!.has(code) : code <= 2 || code === 0x80;
    if (!valid) throw malformed('invalid SUBACK reason code'); // [MQTT-3.9.3-2]
    packet.reasonCodes.push(code);
  }
  if (packet.reasonCodes.length === 0) throw protocolError('SUBACK with no reason codes');
  return packet;
}

function decodeUnsubscribe(r: Reader, version: ProtocolVersion): UnsubscribePacket {
  const packetId = r.u16('packet identifier');
  if (packetId === 0) throw malformed('packet identifier 0'); // [MQTT-2.2.1-3]
  const packet: UnsubscribePacket = { type: 'unsubscribe', packetId, topicFilters: [] };
  if (version === 5) {
    const properties = decodeProperties(r, 10);
    if (properties !== undefined) packet.properties = properties;
  }
  while (r.remaining() > 0) packet.topicFilters.push(r.utf8('topic filter'));
  if (packet.topicFilters.length === 0) throw protocolError('UNSUBSCRIBE with no topic filters'); // [MQTT-3.10.3-2]
  return packet;
}

function decodeUnsuback(r: Reader, version: ProtocolVersion): UnsubackPacket {
  const packetId = r.u16('packet identifier');
  const packet: UnsubackPacket = { type: 'unsuback', packetId, reasonCodes: [] };
  if (version === 5) {
    const properties = decodeProperties(r, 11);
    if (properties !== undefined) packet.properties = properties;
    while (r.remaining() > 0) {
      const code = r.u8('reason code');
      if (!ValidReasonCodes.unsuback!.has(code)) throw malformed('invalid UNSUBACK reason code');
      packet.reasonCodes.push(code);
    }
  }
  expectEmpty(r);
  return packet;
}

function decodeDisconnect(r: Reader, version: ProtocolVersion): DisconnectPacket {
  const packet: DisconnectPacket = { type: 'disconnect', reasonCode: 0 };
  if (version === 5 && r.remaining() > 0) {
    packet.reasonCode = r.u8('reason code');
    if (!ValidReasonCodes.disconnect!.has(packet.reasonCode))
      throw malformed('invalid DISCONNECT reason code');
    if (r.remaining() > 0) {
      const properties = decodeProperties(r, 14);
      if (properties !== undefined) packet.properties = properties;
    }
  }
  expectEmpty(r);
  return packet;
}

function decodeAuth(r: Reader): AuthPacket {
  const packet: AuthPacket = { type: 'auth', reasonCode: 0 };
  if (r.remaining() > 0) {
    packet.reasonCode = r.u8('reason code');
    if (!ValidReasonCodes.auth!.has(packet.reasonCode)) throw malformed('invalid AUTH reason code');
    const properties = decodeProperties(r, 15);
    if (properties !== undefined) packet.properties = properties;
  }
  expectEmpty(r);
  return packet;
}
