/**
 * An outbound PUBLISH as a packet, for an open packet trace: the connection writes the bytes a
 * Message caches per protocol version, so a trace needs the packet they encode built apart
 * (only while a trace is open: nothing here runs on the hot path otherwise).
 */
import type { ProtocolVersion, PublishPacket } from '../protocol/index.ts';
import type { Message, PublishOptions } from '../router/index.ts';

/** The PUBLISH that `message` sent with `delivery` (and `topicAlias`, v5) encodes for `version`. */
export function tracedPublish(
  message: Message,
  delivery: PublishOptions,
  version: ProtocolVersion,
  topicAlias: number | undefined,
): PublishPacket {
  return {
    type: 'publish',
    topic: message.topic,
    payload: message.payload,
    qos: delivery.qos,
    retain: delivery.retain,
    dup: delivery.dup,
    ...(delivery.qos > 0 ? { packetId: delivery.packetId } : {}),
    ...(version === 5
      ? {
          properties: {
            ...message.properties,
            messageExpiryInterval: message.remainingExpiry(Date.now()),
            subscriptionIdentifiers: delivery.subscriptionIds,
            topicAlias: topicAlias || undefined,
          },
        }
      : {}),
  };
}
