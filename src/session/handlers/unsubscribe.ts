/** UNSUBSCRIBE → UNSUBACK, one reason per filter in order (v5: 0x11 when none existed) [MQTT-3.10.4-5]. */
import type { UnsubscribePacket } from '../../protocol/index.ts';
import type { PacketContext } from '../handler-context.ts';

export function handleUnsubscribe(conn: PacketContext, packet: UnsubscribePacket): void {
  const session = conn.session!;
  const reasonCodes = packet.topicFilters.map((filter) => (session.unsubscribe(filter) ? 0x00 : 0x11));
  conn.send({ type: 'unsuback', packetId: packet.packetId, reasonCodes });
}
