/** UNSUBSCRIBE → UNSUBACK, one reason per filter in order (v5: 0x11 when none existed) [MQTT-3.10.4-5]. */
import { ReasonCode, type UnsubscribePacket } from '../../protocol/index.ts';
import type { PacketContext } from '../handler-context.ts';

export function handleUnsubscribe(conn: PacketContext, packet: UnsubscribePacket): void {
  const session = conn.session!;
  const reasonCodes = packet.topicFilters.map((filter) =>
    session.unsubscribe(filter) ? ReasonCode.Success : ReasonCode.NoSubscriptionExisted,
  );
  conn.send({ type: 'unsuback', packetId: packet.packetId, reasonCodes });
}
