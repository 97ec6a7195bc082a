/**
 * One packet shape for every protocol version: v3.1/3.1.1 packets simply leave the v5-only
 * fields (properties, reason codes) at their defaults. Binary fields (payload, password,
 * correlation data) are Buffer views into the bytes the parser received, never copies.
 */
import type { ProtocolVersion, QoS } from './constants.ts';
import type { ProtocolError } from './protocol-error.ts';

/** Every MQTT 5.0 property (section 2.2.2.2), named in camelCase. */
export interface Properties {
  payloadFormatIndicator?: number;
  messageExpiryInterval?: number;
  contentType?: string;
  responseTopic?: string;
  correlationData?: Buffer;
  /** One in SUBSCRIBE; one per matching subscription in PUBLISH. */
  subscriptionIdentifiers?: number[];
  sessionExpiryInterval?: number;
  assignedClientIdentifier?: string;
  serverKeepAlive?: number;
  authenticationMethod?: string;
  authenticationData?: Buffer;
  requestProblemInformation?: number;
  willDelayInterval?: number;
  requestResponseInformation?: number;
  responseInformation?: string;
  serverReference?: string;
  reasonString?: string;
  receiveMaximum?: number;
  topicAliasMaximum?: number;
  topicAlias?: number;
  maximumQoS?: number;
  retainAvailable?: number;
  /** Name/value pairs in wire order; names may repeat [MQTT-3.3.2-18]. */
  userProperties?: [string, string][];
  maximumPacketSize?: number;
  wildcardSubscriptionAvailable?: number;
  subscriptionIdentifierAvailable?: number;
  sharedSubscriptionAvailable?: number;
}

export interface WillMessage {
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  properties?: Properties;
}

export interface ConnectPacket {
  type: 'connect';
  /** 'MQTT' for levels 4 and 5, 'MQIsdp' for level 3. */
  protocolName: string;
  protocolVersion: ProtocolVersion;
  /** Clean Session (v3) / Clean Start (v5). */
  clean: boolean;
  keepalive: number;
  clientId: string;
  username?: string;
  password?: Buffer;
  will?: WillMessage;
  properties?: Properties;
  /**
   * The first configured bound (ParserOptions.limits) the CONNECT exceeds, if any; an over-bound
   * property block is then left out unread. The server refuses such a CONNECT once routed.
   */
  overLimit?: ProtocolError;
}

export interface ConnackPacket {
  type: 'connack';
  sessionPresent: boolean;
  /** v5 reason code, or the v3 return code (0..5). */
  reasonCode: number;
  properties?: Properties;
}

export interface PublishPacket {
  type: 'publish';
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  dup: boolean;
  /** Present exactly when qos > 0. */
  packetId?: number;
  properties?: Properties;
}

export interface PubackPacket {
  type: 'puback' | 'pubrec' | 'pubrel' | 'pubcomp';
  packetId: number;
  /** Always 0 in v3. */
  reasonCode: number;
  properties?: Properties;
}

export interface SubscriptionRequest {
  topicFilter: string;
  qos: QoS;
  noLocal: boolean;
  retainAsPublished: boolean;
  retainHandling: 0 | 1 | 2;
}

export interface SubscribePacket {
  type: 'subscribe';
  packetId: number;
  subscriptions: SubscriptionRequest[];
  properties?: Properties;
}

export interface SubackPacket {
  type: 'suback';
  packetId: number;
  /** v5 reason codes, or v3 return codes (0, 1, 2, 0x80). */
  reasonCodes: number[];
  properties?: Properties;
}

export interface UnsubscribePacket {
  type: 'unsubscribe';
  packetId: number;
  topicFilters: string[];
  properties?: Properties;
}

export interface UnsubackPacket {
  type: 'unsuback';
  packetId: number;
  /** v5 only; empty in v3 (the v3 UNSUBACK has no payload). */
  reasonCodes: number[];
  properties?: Properties;
}

export interface PingPacket {
  type: 'pingreq' | 'pingresp';
}

export interface DisconnectPacket {
  type: 'disconnect';
  /** Always 0 in v3. */
  reasonCode: number;
  properties?: Properties;
}

export interface AuthPacket {
  type: 'auth';
  reasonCode: number;
  properties?: Properties;
}

export type Packet =
  | ConnectPacket
  | ConnackPacket
  | PublishPacket
  | PubackPacket
  | SubscribePacket
  | SubackPacket
  | UnsubscribePacket
  | UnsubackPacket
  | PingPacket
  | DisconnectPacket
  | AuthPacket;
