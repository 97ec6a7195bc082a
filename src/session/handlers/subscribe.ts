/**
 * SUBSCRIBE → SUBACK, then the retained messages each new subscription asks for.
 * Pipeline: validate each filter (an invalid one fails alone: 0x8F in v5, 0x80 in v3)
 * → add to the session and index → SUBACK with the granted QoS in order [MQTT-3.8.4-1]
 * → retained messages by Retain Handling (section 3.8.3.1), none for shared subscriptions.
 */
import type { SubscribePacket } from '../../protocol/index.ts';
import { isSharedFilter, SubackFailure } from '../../protocol/index.ts';
import type { Connection } from '../connection.ts';
import type { Subscription } from '../session.ts';

export function handleSubscribe(conn: Connection, packet: SubscribePacket): void {
  const session = conn.session!;
  const subscriptionId = packet.properties?.subscriptionIdentifiers?.[0];
  for (const req of packet.subscriptions) {
    if (req.noLocal && isSharedFilter(req.topicFilter)) {
      return conn.disconnect('PROTOCOL_ERROR', 'No Local on a shared subscription'); // [MQTT-3.8.3-4]
    }
  }
  const reasonCodes: number[] = [];
  const retainedFor: Subscription[] = [];
  for (const req of packet.subscriptions) {
    const outcome = session.subscribe(req, subscriptionId);
    if (outcome.subscription === undefined) {
      reasonCodes.push(conn.version === 5 ? outcome.code : SubackFailure);
      continue;
    }
    reasonCodes.push(outcome.code);
    const sub = outcome.subscription;
    const wantsRetained = sub.retainHandling === 0 || (sub.retainHandling === 1 && outcome.isNew);
    if (sub.share === undefined && wantsRetained) retainedFor.push(sub);
  }
  conn.send({ type: 'suback', packetId: packet.packetId, reasonCodes });

  const retained = session.broker.retained;
  const now = Date.now();
  for (const sub of retainedFor) {
    const ids = sub.subscriptionId === undefined ? undefined : [sub.subscriptionId];
    for (const message of retained.match(sub.topicFilter, now)) {
      // Retained messages sent on subscribe keep retain set [MQTT-3.3.1-8].
      session.deliver(message, Math.min(message.qos, sub.qos) as 0 | 1 | 2, true, ids);
    }
  }
}
