/**
 * Translation between our packet shape and mqtt-packet's (the mqtt.js codec), for the
 * differential tests. mqtt-packet names things differently (cmd, messageId, granted,
 * unsubscriptions, returnCode before v5, subscriptionIdentifier, subscriptionIdentifiersAvailable),
 * keeps user properties in an object keyed by name (an array value for a repeated name) and
 * exposes the 0/1 byte properties as booleans.
 */
import mqttPacket from 'mqtt-packet';
import type { Packet, Properties, ProtocolVersion, SubscriptionRequest } from '../../src/protocol/index.ts';

export type MqttObject = Record<string, unknown>;

/** Every property by identifier; our encoder writes them in this order, so toMqtt keeps it. */
const PROPERTY_IDS: Record<keyof Properties, number> = {
  payloadFormatIndicator: 0x01,
  messageExpiryInterval: 0x02,
  contentType: 0x03,
  responseTopic: 0x08,
  correlationData: 0x09,
  subscriptionIdentifiers: 0x0b,
  sessionExpiryInterval: 0x11,
  assignedClientIdentifier: 0x12,
  serverKeepAlive: 0x13,
  authenticationMethod: 0x15,
  authenticationData: 0x16,
  requestProblemInformation: 0x17,
  willDelayInterval: 0x18,
  requestResponseInformation: 0x19,
  responseInformation: 0x1a,
  serverReference: 0x1c,
  reasonString: 0x1f,
  receiveMaximum: 0x21,
  topicAliasMaximum: 0x22,
  topicAlias: 0x23,
  maximumQoS: 0x24,
  retainAvailable: 0x25,
  userProperties: 0x26,
  maximumPacketSize: 0x27,
  wildcardSubscriptionAvailable: 0x28,
  subscriptionIdentifierAvailable: 0x29,
  sharedSubscriptionAvailable: 0x2a,
};
const PROPERTY_ORDER = (Object.keys(PROPERTY_IDS) as (keyof Properties)[]).sort(
  (a, b) => PROPERTY_IDS[a] - PROPERTY_IDS[b],
);
/** Byte properties mqtt-packet exposes as booleans. */
const BOOLEANS = new Set<string>([
  'payloadFormatIndicator',
  'requestProblemInformation',
  'requestResponseInformation',
  'retainAvailable',
  'wildcardSubscriptionAvailable',
  'subscriptionIdentifierAvailable',
  'sharedSubscriptionAvailable',
]);
const THEIR_NAME: Partial<Record<keyof Properties, string>> = {
  subscriptionIdentifiers: 'subscriptionIdentifier',
  subscriptionIdentifierAvailable: 'subscriptionIdentifiersAvailable',
};
const OUR_NAME = new Map(Object.entries(THEIR_NAME).map(([ours, theirs]) => [theirs, ours]));

function propsToMqtt(props: Properties): MqttObject {
  const out: MqttObject = {};
  for (const key of PROPERTY_ORDER) {
    const value = props[key];
    if (value === undefined) continue;
    const name = THEIR_NAME[key] ?? key;
    if (key === 'userProperties') {
      const grouped: Record<string, string | string[]> = {};
      for (const [k, v] of props.userProperties!) {
        const prev = grouped[k];
        grouped[k] = prev === undefined ? v : [...[prev].flat(), v];
      }
      out[name] = grouped;
    } else if (key === 'subscriptionIdentifiers') {
      const ids = props.subscriptionIdentifiers!;
      out[name] = ids.length === 1 ? ids[0] : ids;
    } else {
      out[name] = BOOLEANS.has(key) ? value === 1 : value;
    }
  }
  return out;
}

function propsFromMqtt(o: MqttObject): Properties {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(o)) {
    const key = OUR_NAME.get(name) ?? name;
    if (key === 'userProperties') {
      out[key] = Object.entries(value as Record<string, string | string[]>).flatMap(([k, vs]) =>
        [vs].flat().map((v) => [k, v]),
      );
    } else if (key === 'subscriptionIdentifiers') {
      out[key] = [value].flat();
    } else {
      out[key] = typeof value === 'boolean' ? Number(value) : value;
    }
  }
  return out as Properties;
}

const withProps = (props: Properties | undefined, five: boolean) =>
  five && props !== undefined ? { properties: propsToMqtt(props) } : {};

/** Our packet as the object mqtt-packet's generate takes. */
export function toMqtt(p: Packet, version: ProtocolVersion): MqttObject {
  const five = version === 5;
  const cmd = p.type;
  switch (p.type) {
    case 'connect':
      return {
        cmd,
        protocolId: p.protocolName,
        protocolVersion: p.protocolVersion,
        clean: p.clean,
        keepalive: p.keepalive,
        clientId: p.clientId,
        ...(p.will ? { will: { ...p.will, ...withProps(p.will.properties, five) } } : {}),
        ...(p.username !== undefined ? { username: p.username } : {}),
        ...(p.password !== undefined ? { password: p.password } : {}),
        ...withProps(p.properties, five),
      };
    case 'connack':
      return {
        cmd,
        sessionPresent: p.sessionPresent,
        [five ? 'reasonCode' : 'returnCode']: p.reasonCode,
        ...withProps(p.properties, five),
      };
    case 'publish': {
      const { packetId, properties, type: _, ...rest } = p;
      return {
        cmd,
        ...rest,
        ...(packetId !== undefined ? { messageId: packetId } : {}),
        ...withProps(properties, five),
      };
    }
    case 'puback':
    case 'pubrec':
    case 'pubrel':
    case 'pubcomp':
      return {
        cmd,
        messageId: p.packetId,
        ...(five ? { reasonCode: p.reasonCode } : {}),
        ...withProps(p.properties, five),
      };
    case 'subscribe':
      return {
        cmd,
        messageId: p.packetId,
        subscriptions: p.subscriptions.map((s) =>
          five
            ? {
                topic: s.topicFilter,
                qos: s.qos,
                nl: s.noLocal,
                rap: s.retainAsPublished,
                rh: s.retainHandling,
              }
            : { topic: s.topicFilter, qos: s.qos },
        ),
        ...withProps(p.properties, five),
      };
    case 'suback':
      return { cmd, messageId: p.packetId, granted: p.reasonCodes, ...withProps(p.properties, five) };
    case 'unsubscribe':
      return {
        cmd,
        messageId: p.packetId,
        unsubscriptions: p.topicFilters,
        ...withProps(p.properties, five),
      };
    case 'unsuback':
      return {
        cmd,
        messageId: p.packetId,
        ...(five ? { granted: p.reasonCodes } : {}),
        ...withProps(p.properties, five),
      };
    case 'pingreq':
    case 'pingresp':
      return { cmd };
    case 'disconnect':
    case 'auth':
      return { cmd, ...(five ? { reasonCode: p.reasonCode } : {}), ...withProps(p.properties, five) };
  }
}

/** A packet mqtt-packet parsed, in our shape. */
export function fromMqtt(o: MqttObject, version: ProtocolVersion): Packet {
  const five = version === 5;
  const props = o.properties ? { properties: propsFromMqtt(o.properties as MqttObject) } : {};
  const packetId = o.messageId as number;
  switch (o.cmd) {
    case 'connect': {
      const will = o.will as MqttObject | undefined;
      return {
        type: 'connect',
        protocolName: o.protocolId as string,
        protocolVersion: o.protocolVersion as ProtocolVersion,
        clean: o.clean as boolean,
        keepalive: o.keepalive as number,
        clientId: o.clientId as string,
        ...(will
          ? {
              will: {
                topic: will.topic as string,
                payload: will.payload as Buffer,
                qos: will.qos as 0 | 1 | 2,
                retain: will.retain as boolean,
                ...(will.properties ? { properties: propsFromMqtt(will.properties as MqttObject) } : {}),
              },
            }
          : {}),
        ...(o.username !== undefined ? { username: o.username as string } : {}),
        ...(o.password !== undefined ? { password: o.password as Buffer } : {}),
        ...props,
      };
    }
    case 'connack':
      return {
        type: 'connack',
        sessionPresent: o.sessionPresent as boolean,
        reasonCode: (five ? o.reasonCode : o.returnCode) as number,
        ...props,
      };
    case 'publish':
      return {
        type: 'publish',
        topic: o.topic as string,
        payload: o.payload as Buffer,
        qos: o.qos as 0 | 1 | 2,
        retain: o.retain as boolean,
        dup: o.dup as boolean,
        ...((o.qos as number) > 0 ? { packetId } : {}),
        ...props,
      };
    case 'puback':
    case 'pubrec':
    case 'pubrel':
    case 'pubcomp':
      return { type: o.cmd, packetId, reasonCode: five ? (o.reasonCode as number) : 0, ...props };
    case 'subscribe':
      return {
        type: 'subscribe',
        packetId,
        subscriptions: (o.subscriptions as MqttObject[]).map(
          (s): SubscriptionRequest => ({
            topicFilter: s.topic as string,
            qos: s.qos as 0 | 1 | 2,
            noLocal: (s.nl as boolean | undefined) ?? false,
            retainAsPublished: (s.rap as boolean | undefined) ?? false,
            retainHandling: (s.rh as 0 | 1 | 2 | undefined) ?? 0,
          }),
        ),
        ...props,
      };
    case 'suback':
      return { type: 'suback', packetId, reasonCodes: o.granted as number[], ...props };
    case 'unsubscribe':
      return { type: 'unsubscribe', packetId, topicFilters: o.unsubscriptions as string[], ...props };
    case 'unsuback':
      return { type: 'unsuback', packetId, reasonCodes: five ? (o.granted as number[]) : [], ...props };
    case 'pingreq':
    case 'pingresp':
      return { type: o.cmd };
    case 'disconnect':
    case 'auth':
      return { type: o.cmd, reasonCode: (o.reasonCode as number | undefined) ?? 0, ...props };
    default:
      throw new Error(`unexpected mqtt-packet cmd ${String(o.cmd)}`);
  }
}

export function theirParse(bytes: Buffer, version: ProtocolVersion): MqttObject[] {
  const parser = mqttPacket.parser({ protocolVersion: version });
  const out: MqttObject[] = [];
  let error: Error | undefined;
  parser.on('packet', (p) => out.push(p as unknown as MqttObject));
  parser.on('error', (e) => {
    error = e;
  });
  parser.parse(bytes);
  if (error) throw error;
  return out;
}

export const theirGenerate = (p: Packet, version: ProtocolVersion): Buffer =>
  mqttPacket.generate(toMqtt(p, version) as unknown as mqttPacket.Packet, { protocolVersion: version });
