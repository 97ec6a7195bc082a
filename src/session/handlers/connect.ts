/**
 * CONNECT → CONNACK. Pipeline: validate the client id and keep alive → check the will against
 * the server's capabilities → take over a connection holding the same client id → open or
 * resume the session → CONNACK with the server's limits → resume in-flight and queued
 * deliveries. Every refusal is a CONNACK carrying the code for the client's version and closes
 * the connection [MQTT-3.2.2-5], [MQTT-3.2.2-6].
 */
import { randomBytes } from 'node:crypto';
import {
  type ConnackPacket,
  type ConnectPacket,
  isValidTopicName,
  type Properties,
} from '../../protocol/index.ts';
import type { Connection } from '../connection.ts';

const NEVER = 0xffffffff;

export function handleConnect(conn: Connection, packet: ConnectPacket): void {
  const config = conn.config;
  const v5 = packet.protocolVersion === 5;
  conn.version = packet.protocolVersion;
  const props = packet.properties;

  // Client identifier.
  let clientId = packet.clientId;
  let assigned = false;
  if (clientId === '') {
    if (packet.protocolVersion === 3)
      return conn.refuse('CLIENT_ID_NOT_VALID', 'MQTT 3.1 requires a client identifier');
    if (!v5 && !packet.clean)
      return conn.refuse('CLIENT_ID_NOT_VALID', 'empty client identifier needs clean session'); // [MQTT-3.1.3-8]
    clientId = `auto-${randomBytes(12).toString('base64url')}`; // [MQTT-3.1.3-6], [MQTT-3.1.3-7]
    assigned = true;
  }
  conn.clientId = clientId;
  if (Buffer.byteLength(clientId) > config.maxClientIdLength) {
    return conn.refuse(
      'CLIENT_ID_NOT_VALID',
      `client identifier longer than ${config.maxClientIdLength} bytes`,
    ); // [MQTT-3.1.3-5]
  }
  if (props?.authenticationMethod !== undefined) {
    return conn.refuse(
      'BAD_AUTHENTICATION_METHOD',
      `authentication method ${props.authenticationMethod} not supported`,
    ); // [MQTT-4.12.0-1]
  }

  // Keep alive: v5 clients are told a lower maximum [MQTT-3.2.2-21]; v3 clients cannot be.
  let keepalive = packet.keepalive;
  let serverKeepAlive: number | undefined;
  // A configured maximum also bounds "no keep alive" (0) for v5, as mosquitto does.
  const unbounded = v5 && keepalive === 0 && config.maxKeepalive < 65535;
  if (keepalive > config.maxKeepalive || unbounded) {
    if (!v5)
      return conn.refuse(
        'CLIENT_ID_NOT_VALID',
        `keep alive ${keepalive} above maximum ${config.maxKeepalive}`,
      );
    keepalive = serverKeepAlive = config.maxKeepalive;
  }

  // The will must fit what the server offers.
  const will = packet.will;
  if (will !== undefined) {
    if (!isValidTopicName(will.topic))
      return conn.refuse('TOPIC_NAME_INVALID', 'will topic is not a valid topic name'); // [MQTT-3.1.3-11]
    if (will.qos > config.maximumQoS) return conn.refuse('QOS_NOT_SUPPORTED', 'will QoS above maximum QoS'); // [MQTT-3.2.2-12]
    if (will.retain && !config.retainAvailable)
      return conn.refuse('RETAIN_NOT_SUPPORTED', 'retain not available'); // [MQTT-3.2.2-13]
  }

  // Session expiry: v5 from the property (absent: 0) [MQTT-3.1.2-11]; v3 from Clean Session.
  const requestedExpiry = v5 ? (props?.sessionExpiryInterval ?? 0) : packet.clean ? 0 : NEVER;
  const sessionExpiry = Math.min(requestedExpiry, config.maxSessionExpiryInterval);

  const admitted = conn.ctx.brokerFor(conn, packet);
  if ('refuse' in admitted) return conn.refuse(admitted.refuse, admitted.detail);
  const broker = admitted;

  // Takeover: the existing connection is closed first, so its will and session end are settled
  // before the new connection decides what to resume [MQTT-3.1.4-3].
  const previous = broker.sessions.get(clientId)?.link;
  if (previous !== undefined) {
    (previous as Connection).disconnect('SESSION_TAKEN_OVER', 'session taken over by a new connection');
  }
  const { session, present } = broker.openSession(clientId, packet.clean);
  session.expiryInterval = sessionExpiry;

  const receiveMaximum = props?.receiveMaximum ?? 65535;
  conn.accept({
    broker,
    session,
    keepalive,
    window: Math.min(receiveMaximum, config.maxInflightMessages),
    clientMaximumPacketSize: props?.maximumPacketSize ?? Number.POSITIVE_INFINITY,
    will,
  });

  const connack: ConnackPacket = { type: 'connack', sessionPresent: present, reasonCode: 0 }; // [MQTT-3.2.2-2], [MQTT-3.2.2-3]
  if (v5) {
    const out: Properties = {
      receiveMaximum: config.receiveMaximum, // [MQTT-3.2.2-?] section 3.2.2.3.3
      maximumPacketSize: config.maximumPacketSize,
      topicAliasMaximum: config.topicAliasMaximum,
    };
    if (assigned) out.assignedClientIdentifier = clientId; // [MQTT-3.2.2-16]
    if (serverKeepAlive !== undefined) out.serverKeepAlive = serverKeepAlive;
    if (sessionExpiry !== requestedExpiry) out.sessionExpiryInterval = sessionExpiry;
    if (config.maximumQoS < 2) out.maximumQoS = config.maximumQoS; // [MQTT-3.2.2-9]
    if (!config.retainAvailable) out.retainAvailable = 0;
    connack.properties = out;
  }
  conn.send(connack);
  conn.log.info(
    { version: packet.protocolVersion, clean: packet.clean, keepalive, sessionPresent: present },
    'client connected',
  );
  session.attach(conn);
}
