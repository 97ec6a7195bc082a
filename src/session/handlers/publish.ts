/**
 * Inbound PUBLISH. Pipeline: rate limit → resolve the topic alias → validate topic and
 * capabilities → QoS 2 duplicate check and Receive Maximum → payload format → authorize by the
 * token's topicAcl → refuse QoS 1/2 while the message store fails → route (the broker applies
 * retain, fans out and writes what persistent sessions and the retained store keep) →
 * acknowledge, after the commit when the message was written (the durability contract).
 * With an on-publish hook, routing waits for the hook's decision (src/hooks/pipeline.ts); the
 * acknowledgement then waits for it too (`--hook-ack after`, the default) or is sent at once
 * (`before`). Acknowledgements leave in PUBLISH order either way (Connection.acks)
 * [MQTT-4.6.0-2], [MQTT-4.6.0-3].
 * QoS 2 follows method A of section 4.3.3: delivered once on first receipt; a re-sent PUBLISH
 * with an id still awaiting PUBREL is acknowledged again but not delivered again [MQTT-4.3.3-10].
 */
import { isUtf8 } from 'node:buffer';
import { mayPublish } from '../../auth/index.ts';
import type { OnPublishPipeline } from '../../hooks/index.ts';
import type { PubackPacket, PublishPacket } from '../../protocol/index.ts';
import { isValidTopicName, ReasonCode } from '../../protocol/index.ts';
import { Message } from '../../router/index.ts';
import type { PacketContext } from '../handler-context.ts';

export function handlePublish(conn: PacketContext, packet: PublishPacket): void {
  const config = conn.config;
  const session = conn.session!;
  const props = packet.properties;
  const now = Date.now();

  if (!conn.countPublish(now)) {
    return conn.disconnect('MESSAGE_RATE_TOO_HIGH', `more than ${config.maxPublishRate} PUBLISH per second`); // section 4.13 (0x96)
  }

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
    const ack = packet.qos === 1 ? 'puback' : 'pubrec'; // a failed PUBREC ends the QoS 2 exchange
    conn.acks.send(() =>
      conn.sendRefusal(
        { type: ack, packetId: packet.packetId!, reasonCode: 0x99 },
        'payload format indicator 1 but the payload is not valid UTF-8',
      ),
    );
    return;
  }

  // Authorization by the token's topicAcl. v5: a refused QoS 1/2 message is acknowledged with
  // 0x87; QoS 0 and every v3 message are dropped and acknowledged normally, the one choice
  // v3.1.1 leaves a server besides closing [MQTT-3.3.5-2]. Every refusal is counted.
  const acl = conn.identity?.acl;
  if (acl !== undefined && !mayPublish(acl, topic, conn.clientId)) {
    conn.broker!.stats.droppedNotAuthorized++;
    if (conn.version === 5 && packet.qos > 0) {
      const ack = packet.qos === 1 ? 'puback' : 'pubrec';
      conn.acks.send(() =>
        conn.sendRefusal(
          { type: ack, packetId: packet.packetId!, reasonCode: ReasonCode.NotAuthorized },
          `not authorized to publish to ${topic.slice(0, 64)}`,
        ),
      );
      return;
    }
    return acknowledge(conn, packet, false); // dropped, acknowledged as usual
  }

  // An ack would claim a message is stored that cannot be: refuse it instead.
  const store = conn.broker!.store;
  if (packet.qos > 0 && store.failed !== undefined) {
    if (conn.version !== 5) return conn.disconnect('STORAGE_UNAVAILABLE', 'message store unavailable');
    conn.acks.send(() =>
      conn.sendRefusal(
        { type: packet.qos === 1 ? 'puback' : 'pubrec', packetId: packet.packetId!, reasonCode: 0x80 },
        'message store unavailable',
      ),
    );
    return;
  }
  const message = Message.fromPublish(packet, topic, conn.clientId, now);
  const pipeline = conn.broker!.hooks?.activePipeline;
  if (pipeline !== undefined) return throughHook(conn, packet, message, pipeline);
  const writes = store.writes;
  conn.broker!.publish(message);
  if (packet.qos > 0) acknowledge(conn, packet, store.writes !== writes);
}

/**
 * The message goes to the broker's on-publish hook; it is routed when the hook decides. The
 * acknowledgement's place is reserved now so that it leaves in PUBLISH order. A QoS 2 id is
 * recorded at once, so a re-sent PUBLISH is not decided twice [MQTT-4.3.3-10].
 */
function throughHook(
  conn: PacketContext,
  packet: PublishPacket,
  message: Message,
  pipeline: OnPublishPipeline,
): void {
  const broker = conn.broker!;
  const session = conn.session!;
  const store = broker.store;
  const { qos } = packet;
  const packetId = packet.packetId!;
  const ack = qos === 1 ? 'puback' : 'pubrec';
  let inboundWrote = false;
  if (qos === 2) {
    const writes = store.writes;
    session.addInboundQos2(packetId);
    inboundWrote = store.writes !== writes;
  }
  let answer: ((send: () => void) => void) | undefined;
  if (qos > 0) {
    if (conn.config.hookAck === 'before')
      conn.acks.send(() => conn.sendDurable({ type: ack, packetId, reasonCode: 0 }, inboundWrote));
    else answer = conn.acks.reserve();
  }
  pipeline.submit(
    {
      message: message.detach(),
      jti: conn.identity?.jti,
      decided: (decided, failed) => {
        const writes = store.writes;
        try {
          if (decided !== undefined) broker.publish(decided);
        } catch (err) {
          // As on the direct path (Connection.#onData): an internal error closes this client only.
          conn.log.error({ err }, 'internal error routing a message decided by the on-publish hook');
          conn.disconnect('IMPLEMENTATION_ERROR', 'internal error');
          return;
        }
        if (answer === undefined) return;
        if (decided === undefined && failed !== undefined && conn.version === 5) {
          // Fail-closed: a v5 publisher learns the message was not delivered (0x80).
          answer(() => {
            // Only this connection's exchange: after a reconnect the id may name a newer message.
            if (qos === 2 && !conn.closed) session.releaseInboundQos2(packetId);
            conn.sendRefusal(
              { type: ack, packetId, reasonCode: ReasonCode.UnspecifiedError },
              `on-publish hook failed: ${failed.slice(0, 100)}`,
            );
          });
          return;
        }
        const wrote = inboundWrote || store.writes !== writes;
        answer(() => conn.sendDurable({ type: ack, packetId, reasonCode: 0 }, wrote));
      },
    },
    conn,
  );
}

/** PUBACK or PUBREC (in PUBLISH order), after the commit when routing wrote to the store (`wrote`). */
function acknowledge(conn: PacketContext, packet: PublishPacket, wrote: boolean): void {
  const packetId = packet.packetId!;
  if (packet.qos === 2) {
    const store = conn.broker!.store;
    const writes = store.writes;
    conn.session!.addInboundQos2(packetId);
    wrote ||= store.writes !== writes;
  }
  const ack: PubackPacket = { type: packet.qos === 1 ? 'puback' : 'pubrec', packetId, reasonCode: 0 };
  // [MQTT-4.3.2-2], [MQTT-4.3.3-8]
  if (conn.acks.waiting === 0) conn.sendDurable(ack, wrote);
  else conn.acks.send(() => conn.sendDurable(ack, wrote));
}
