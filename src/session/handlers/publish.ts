/**
 * Inbound PUBLISH: checks the packet, then hands the message to the broker's publish gate
 * (src/session/publish-gate.ts: authorize, on-publish hook, route, acknowledge in order after
 * the commit). Checks, in order: the broker's inbound rates (throttle, or 0x96) → resolve the
 * topic alias → topic name (its length and levels, the broker's limits over
 * `--max-topic-length` and `--max-topic-levels`) and subscription identifiers → QoS and retain
 * the server supports → QoS 2 duplicate and Receive Maximum → payload format.
 * QoS 2 follows method A of section 4.3.3: delivered once on first receipt; a re-sent PUBLISH
 * with an id still awaiting PUBREL is acknowledged again but not delivered again [MQTT-4.3.3-10].
 */
import { isUtf8 } from 'node:buffer';
import type { PublishPacket } from '../../protocol/index.ts';
import { exceedsTopicLength, exceedsTopicLevels, isValidTopicName } from '../../protocol/index.ts';
import { Message } from '../../router/index.ts';
import type { PacketContext } from '../handler-context.ts';
import { refusePublish } from '../publish-gate.ts';

export function handlePublish(conn: PacketContext, packet: PublishPacket): void {
  const config = conn.config;
  const session = conn.session!;
  const props = packet.properties;
  const now = Date.now();
  conn.stats!.received[packet.qos]++;

  const overRate = conn.countPublish(packet.payload.length, now);
  if (overRate !== undefined) return conn.disconnect('MESSAGE_RATE_TOO_HIGH', overRate); // section 4.13 (0x96)

  let topic = packet.topic;
  const alias = props?.topicAlias;
  if (alias !== undefined) {
    if (alias === 0 || alias > config.topicAliasMaximum) {
      return conn.disconnect(
        'TOPIC_ALIAS_INVALID',
        `topic alias ${alias} outside 1..${config.topicAliasMaximum}`,
      ); // [MQTT-3.3.2-8], [MQTT-3.3.2-9]
    }
    if (topic === '') {
      const known = conn.topicAliases.get(alias);
      if (known === undefined) return conn.disconnect('PROTOCOL_ERROR', `topic alias ${alias} not set`); // section 3.3.2.3.4
      topic = known;
    } else {
      conn.topicAliases.set(alias, topic);
    }
  }
  if (!isValidTopicName(topic))
    return conn.disconnect('TOPIC_NAME_INVALID', 'topic name empty or containing wildcards'); // [MQTT-3.3.2-2]
  const limits = conn.broker!.limits;
  if (exceedsTopicLength(topic, limits.maxTopicLength)) {
    conn.stats!.refusedOverLimit.max_topic_length++;
    return refuseTopic(conn, packet, `topic name longer than ${limits.maxTopicLength} bytes`);
  }
  if (exceedsTopicLevels(topic, limits.maxTopicLevels)) {
    conn.stats!.droppedTopicLevels++;
    conn.stats!.refusedOverLimit.max_topic_levels++;
    return refuseTopic(conn, packet, `topic name has more than ${limits.maxTopicLevels} levels`);
  }
  if (props?.subscriptionIdentifiers !== undefined) {
    return conn.disconnect('PROTOCOL_ERROR', 'PUBLISH from a client carries a subscription identifier'); // [MQTT-3.3.4-6]
  }
  if (packet.qos > config.maximumQoS)
    return conn.disconnect('QOS_NOT_SUPPORTED', `QoS ${packet.qos} not supported`); // [MQTT-3.2.2-11]
  if (packet.retain && !config.retainAvailable)
    return conn.disconnect('RETAIN_NOT_SUPPORTED', 'retain not supported'); // [MQTT-3.2.2-14]

  if (packet.qos === 2) {
    const id = packet.packetId!;
    if (session.inboundQos2.has(id)) {
      conn.acks.send(() => conn.sendDurable({ type: 'pubrec', packetId: id, reasonCode: 0 }, false));
      return;
    }
    // QoS 1 is acknowledged at once, so only unreleased QoS 2 messages count [MQTT-3.3.4-7], [MQTT-3.3.4-8].
    if (session.inboundQos2.size >= config.receiveMaximum) {
      return conn.disconnect(
        'RECEIVE_MAXIMUM_EXCEEDED',
        `more than ${config.receiveMaximum} QoS 2 messages unreleased`,
      ); // section 4.9 (flow control), 0x93
    }
  }

  // Section 3.3.2.3.2: a receiver MAY check a payload claiming UTF-8 and refuse it with 0x99.
  if (props?.payloadFormatIndicator === 1 && config.validatePayloadFormat && !isUtf8(packet.payload)) {
    if (packet.qos === 0) return conn.disconnect('PAYLOAD_FORMAT_INVALID', 'payload is not valid UTF-8');
    return refusePublish(
      conn,
      packet.qos,
      packet.packetId!,
      'PAYLOAD_FORMAT_INVALID',
      'payload format indicator 1 but the payload is not valid UTF-8',
    );
  }

  const message = Message.fromPublish(packet, topic, conn.clientId, now);
  conn.broker!.gate.publish(conn, session, message, packet.packetId ?? 0);
}

/**
 * A topic name longer or deeper than the broker's limits (`--max-topic-length`, `--max-topic-levels`):
 * well formed, but not one this server accepts, which is what reason 0x90 says. v5 QoS 1/2: PUBACK/PUBREC 0x90, the connection
 * stays (section 3.4.2.1); v5 QoS 0 has no acknowledgement to carry it, and a silent drop would
 * tell the client nothing, so DISCONNECT 0x90 (section 3.14.2.1); v3.1/3.1.1 have no reason
 * codes, so the connection is closed, the one refusal they can see [MQTT-3.3.5-2]. The caller
 * counts it.
 */
function refuseTopic(conn: PacketContext, packet: PublishPacket, detail: string): void {
  if (conn.version === 5 && packet.qos > 0)
    return refusePublish(conn, packet.qos, packet.packetId!, 'TOPIC_NAME_INVALID', detail);
  conn.disconnect('TOPIC_NAME_INVALID', detail);
}
