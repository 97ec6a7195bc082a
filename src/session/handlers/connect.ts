/**
 * CONNECT → CONNACK. Pipeline: validate the client id and keep alive → check the will against
 * the server's capabilities → the process's limits (overload, connection caps: connection-guard.ts)
 * → admission and authentication → the client id's connect rate → [enhanced authentication: an
 * AUTH exchange, section 4.12] → take
 * over a connection holding the same client id → open or resume the session → CONNACK with
 * the server's limits → resume in-flight and queued deliveries. Every refusal closes the
 * connection after a CONNACK carrying the code for the client's version [MQTT-3.2.2-5]; a v3.1
 * or v3.1.1 CONNECT refused for a reason its CONNACK has no code for (an invalid will topic, a
 * will QoS or retain the server does not offer) gets no CONNACK [MQTT-3.1.4-1], [MQTT-3.2.2-6].
 *
 * The CONNACK obeys the client's Maximum Packet Size [MQTT-3.1.2-24]: it is built, and measured
 * without the properties that may be left out (connection-io.ts, encodeForClient), before the
 * session is touched. One that cannot fit refuses the CONNECT (0x83, itself sent only if it
 * fits): no takeover, no session, and so no will, as for any refused CONNECT — the will belongs
 * to a session, which a refused CONNECT never opens [MQTT-3.1.2-7].
 */
import { isUtf8 } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import {
  type ConnackPacket,
  type ConnectPacket,
  exceedsTopicLength,
  exceedsTopicLevels,
  isValidTopicName,
  type Properties,
  type WillMessage,
} from '../../protocol/index.ts';
import type { BrokerPort as Broker } from '../broker-port.ts';
import { clientConnected, sessionTakenOver } from '../client-events.ts';
import type { PacketContext } from '../handler-context.ts';
import { connectionsOf, countCode } from '../host.ts';
import { clientMayPublish } from '../publish-gate.ts';
import { beginAuth } from './auth.ts';

const NEVER = 0xffffffff;

/** What CONNECT validation settled, for opening the session once authentication allows it. */
interface ConnectPlan {
  clientId: string;
  assigned: boolean;
  keepalive: number;
  serverKeepAlive: number | undefined;
  will: WillMessage | undefined;
  requestedExpiry: number;
  sessionExpiry: number;
}

export function handleConnect(conn: PacketContext, packet: ConnectPacket): void {
  const config = conn.config;
  const v5 = packet.protocolVersion === 5;
  conn.version = packet.protocolVersion;
  const props = packet.properties;
  // Binds every packet from here on, a refusing CONNACK included [MQTT-3.1.2-24].
  conn.clientMaximumPacketSize = props?.maximumPacketSize ?? Number.POSITIVE_INFINITY;

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
  // Absent means 1: problem information may be sent [MQTT-3.1.2-29].
  conn.problemInformation = props?.requestProblemInformation !== 0;

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
    // Section 3.1.3.2.3: the Server MAY validate a will claiming UTF-8 and refuse it with 0x99.
    if (
      config.validatePayloadFormat &&
      will.properties?.payloadFormatIndicator === 1 &&
      !isUtf8(will.payload)
    )
      return conn.refuse('PAYLOAD_FORMAT_INVALID', 'will payload is not valid UTF-8');
  }

  // Session expiry: v5 from the property (absent: 0) [MQTT-3.1.2-11]; v3 from Clean Session.
  const requestedExpiry = v5 ? (props?.sessionExpiryInterval ?? 0) : packet.clean ? 0 : NEVER;
  const plan: ConnectPlan = {
    clientId,
    assigned,
    keepalive,
    serverKeepAlive,
    will,
    requestedExpiry,
    sessionExpiry: Math.min(requestedExpiry, config.maxSessionExpiryInterval),
  };

  // Process-wide limits (overload, connection caps), before authentication spends anything.
  const busy = conn.ctx.guard.admit(conn);
  if (busy !== undefined) return conn.refuse(busy.code, busy.detail);

  // Authentication by the tenant's rules: anonymous, token or certificate [MQTT-3.1.4-2].
  const admitted = conn.ctx.brokerFor(conn, packet);
  if ('refuse' in admitted) {
    if (admitted.broker !== undefined) {
      conn.routeTo(admitted.broker, packet);
      countCode(admitted.broker.stats.authFailures, admitted.refuse);
    }
    return conn.refuse(admitted.refuse, admitted.detail, admitted.delayMs);
  }
  const { broker, identity } = admitted;
  conn.routeTo(broker, packet);
  conn.identity = identity;
  // Over a bound of docs/limits.md, refused once the broker that counts it is known. Over-bound
  // property blocks were skipped, not built (protocol/reader.ts). v5: CONNACK 0x95 (the will's
  // size, or its properties') and 0x90 (the will topic); v3: no return code says either, so a close.
  if (packet.overLimit?.limit !== undefined) {
    broker.stats.refusedOverLimit[packet.overLimit.limit]++;
    return conn.refuse('PACKET_TOO_LARGE', packet.overLimit.message);
  }
  const limits = broker.limits;
  if (will !== undefined && exceedsTopicLength(will.topic, limits.maxTopicLength)) {
    broker.stats.refusedOverLimit.max_topic_length++;
    return conn.refuse('TOPIC_NAME_INVALID', `will topic longer than ${limits.maxTopicLength} bytes`);
  }
  // Deeper than the broker's limit (--max-topic-levels): v5 CONNACK 0x90 (section 3.2.2.2); no v3
  // return code says it, so a v3 client is closed without a CONNACK, as for any will topic refused (connackCode).
  if (will !== undefined && exceedsTopicLevels(will.topic, limits.maxTopicLevels)) {
    broker.stats.refusedOverLimit.max_topic_levels++;
    return conn.refuse('TOPIC_NAME_INVALID', `will topic has more than ${limits.maxTopicLevels} levels`);
  }
  if (admitted.clientId !== undefined && admitted.clientId !== plan.clientId) {
    // An empty client id takes the credentials' (a token's `sub`) [MQTT-3.1.3-6].
    if (Buffer.byteLength(admitted.clientId) > config.maxClientIdLength)
      return conn.refuse(
        'CLIENT_ID_NOT_VALID',
        `client identifier longer than ${config.maxClientIdLength} bytes`,
      );
    plan.clientId = conn.clientId = admitted.clientId;
  }
  // Connects per client id (takeover and reconnect loops), after authentication: only the
  // client's own credentials spend its budget.
  const throttled = conn.ctx.guard.admitClientId(broker.address, plan.clientId);
  if (throttled !== undefined) return conn.refuse(throttled.code, throttled.detail);
  // The broker's connection cap (its limits' max_connections): v5 0x97 Quota exceeded, v3 0x03.
  // A takeover of a connected client id replaces a connection, so it never counts twice.
  if (
    limits.maxConnections > 0 &&
    connectionsOf(broker.stats) >= limits.maxConnections &&
    broker.sessions.get(plan.clientId)?.link === undefined
  ) {
    broker.stats.refusedOverLimit.max_connections++;
    return conn.refuse(
      'BROKER_MAX_CONNECTIONS',
      `broker ${broker.address} holds its maximum of ${limits.maxConnections} connections`,
    );
  }
  // A will to a reserved topic ($SYS, $share) or outside the token's topicAcl: v5 0x87, v3 0x05 [MQTT-3.1.4-2].
  if (will !== undefined && !clientMayPublish(identity.acl, will.topic, plan.clientId))
    return conn.refuse(
      'NOT_AUTHORIZED',
      `will topic ${will.topic} not allowed (reserved, or outside the topicAcl)`,
    );

  const method = props?.authenticationMethod;
  if (method !== undefined) {
    const authenticator = broker.authenticators.get(method);
    if (authenticator === undefined) {
      countCode(broker.stats.authFailures, 'BAD_AUTHENTICATION_METHOD');
      return conn.refuse('BAD_AUTHENTICATION_METHOD', `authentication method ${method} not supported`); // section 4.12, 3.2.2.2 (0x8C)
    }
    conn.state = 'authenticating';
    conn.authMethod = method;
    beginAuth(conn, method, authenticator.begin(plan.clientId), props?.authenticationData, (data) =>
      openSession(conn, packet, broker, plan, data),
    );
    return;
  }
  openSession(conn, packet, broker, plan, undefined);
}

/**
 * Authenticated (or no authentication asked): measure the CONNACK, take over, open the session,
 * CONNACK, resume.
 */
function openSession(
  conn: PacketContext,
  packet: ConnectPacket,
  broker: Broker,
  plan: ConnectPlan,
  authenticationData: Buffer | undefined,
): void {
  const connack = successConnack(conn, packet, plan, authenticationData);
  if (conn.encodeForClient(connack) === undefined) {
    return conn.refuse(
      'CONNACK_TOO_LARGE',
      `CONNACK needs more than the client's Maximum Packet Size of ${conn.clientMaximumPacketSize} bytes`,
    ); // [MQTT-3.1.2-24]
  }
  // A cluster node cut off from NATS (or starting: its restored copies in doubt) cannot tell
  // whether another node serves the session now.
  if ((!packet.clean || plan.sessionExpiry > 0) && broker.fenced)
    return conn.refuse(
      'SERVER_UNAVAILABLE',
      'not in touch with the cluster (cut off, or starting): persistent sessions are served by the other nodes',
    );
  // In a cluster the session may be on another node: it is fetched first (the packets behind
  // this CONNECT wait), then resumed here (src/cluster/session-handover.ts).
  if (!packet.clean && broker.sessions.get(plan.clientId) === undefined) {
    const fetched = broker.fetchSession(plan.clientId);
    if (fetched !== undefined) {
      conn.readAfter(fetched, (known, closed) => {
        if (closed) return; // the adopted session waits, detached, for the client's next CONNECT
        if (broker.closed) return conn.refuse('SERVER_UNAVAILABLE', `broker ${broker.address} was deleted`);
        if (known === false || broker.fenced)
          return conn.refuse('SERVER_UNAVAILABLE', 'the cluster cannot say now where this session is');
        resumeSession(conn, packet, broker, plan, connack);
      });
      return;
    }
  }
  resumeSession(conn, packet, broker, plan, connack);
}

/** Take over, open or resume the session, CONNACK, resume deliveries. */
function resumeSession(
  conn: PacketContext,
  packet: ConnectPacket,
  broker: Broker,
  plan: ConnectPlan,
  connack: ConnackPacket,
): void {
  const { clientId, sessionExpiry } = plan;

  // Takeover: the existing connection is closed first, so its will and session end are settled
  // before the new connection decides what to resume [MQTT-3.1.4-3].
  const previous = broker.sessions.get(clientId)?.link;
  if (previous !== undefined) {
    sessionTakenOver(conn, broker);
    previous.disconnect('SESSION_TAKEN_OVER', 'session taken over by a new connection');
  }
  const { session, present } = broker.openSession(clientId, packet.clean);
  session.expiryInterval = sessionExpiry;

  const receiveMaximum = packet.properties?.receiveMaximum ?? 65535;
  conn.accept({
    broker,
    session,
    keepalive: plan.keepalive,
    window: Math.min(receiveMaximum, conn.config.maxInflightMessages),
    clientTopicAliasMaximum: packet.properties?.topicAliasMaximum ?? 0,
    will: plan.will,
  });

  connack.sessionPresent = present; // [MQTT-3.2.2-2], [MQTT-3.2.2-3]
  conn.writePacket(connack, conn.encodeForClient(connack)!); // the flag does not change its size
  clientConnected(conn, broker, {
    version: packet.protocolVersion,
    clean: packet.clean,
    keepalive: plan.keepalive,
    sessionPresent: present,
    sessionExpiry,
  });
  session.attach(conn);
  broker.willChanged(clientId); // this connection's will, and any waiting one cancelled
}

/** The accepting CONNACK, Session Present still 0: for v5, the server's limits and answers. */
function successConnack(
  conn: PacketContext,
  packet: ConnectPacket,
  plan: ConnectPlan,
  authenticationData: Buffer | undefined,
): ConnackPacket {
  const connack: ConnackPacket = { type: 'connack', sessionPresent: false, reasonCode: 0 };
  if (packet.protocolVersion !== 5) return connack;
  const config = conn.config;
  const props = packet.properties;
  const { clientId, sessionExpiry } = plan;
  const out: Properties = {
    receiveMaximum: config.receiveMaximum, // section 3.2.2.3.3
    maximumPacketSize: config.maximumPacketSize, // section 3.2.2.3.6
    topicAliasMaximum: config.topicAliasMaximum, // section 3.2.2.3.8
  };
  if (plan.assigned) out.assignedClientIdentifier = clientId; // [MQTT-3.2.2-16]
  if (plan.serverKeepAlive !== undefined) out.serverKeepAlive = plan.serverKeepAlive; // [MQTT-3.2.2-21]
  if (sessionExpiry !== plan.requestedExpiry) out.sessionExpiryInterval = sessionExpiry;
  if (config.maximumQoS < 2) out.maximumQoS = config.maximumQoS; // [MQTT-3.2.2-9]
  if (!config.retainAvailable) out.retainAvailable = 0;
  // Absent means available (sections 3.2.2.3.13-15): only a disabled feature is announced.
  if (!config.wildcardSubscriptionsAvailable) out.wildcardSubscriptionAvailable = 0;
  if (!config.subscriptionIdentifiersAvailable) out.subscriptionIdentifierAvailable = 0;
  if (!config.sharedSubscriptionsAvailable) out.sharedSubscriptionAvailable = 0;
  // Response Information only when asked for (section 3.1.2.11.7, 3.2.2.3.15).
  if (props?.requestResponseInformation === 1 && config.responseInformation !== '') {
    out.responseInformation = config.responseInformation.replaceAll('{clientId}', clientId);
  }
  if (conn.authMethod !== undefined) {
    out.authenticationMethod = conn.authMethod; // [MQTT-4.12.0-5]
    if (authenticationData !== undefined) out.authenticationData = authenticationData;
  }
  connack.properties = out;
  return connack;
}
