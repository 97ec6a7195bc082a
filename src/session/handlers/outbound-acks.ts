/**
 * Acknowledgements of the server's own PUBLISHes: PUBACK ends a QoS 1 exchange, PUBREC moves
 * a QoS 2 exchange on (answered by PUBREL) and PUBCOMP ends it. Acks for ids the session does
 * not know are ignored (v3) or, for PUBREC, answered with PUBREL 0x92 in v5 (section 4.3.3).
 */
import { isFailureReason, reasonCodeOf } from '../../errors.ts';
import type { PubackPacket } from '../../protocol/index.ts';
import type { PacketContext } from '../handler-context.ts';

const PACKET_ID_NOT_FOUND = reasonCodeOf('PACKET_ID_NOT_FOUND');

export function handlePuback(conn: PacketContext, packet: PubackPacket): void {
  if (!conn.session!.acknowledge(packet.packetId)) {
    conn.log.debug({ packetId: packet.packetId }, 'PUBACK for unknown packet id');
  }
}

export function handlePubrec(conn: PacketContext, packet: PubackPacket): void {
  const outcome = conn.session!.received(packet.packetId, packet.reasonCode);
  if (outcome === 'unknown') {
    conn.send({ type: 'pubrel', packetId: packet.packetId, reasonCode: PACKET_ID_NOT_FOUND });
    return;
  }
  // PUBREL once the PUBREC'd state is stored: a restart then re-sends PUBREL, not the PUBLISH.
  if (!isFailureReason(packet.reasonCode))
    conn.sendDurable({ type: 'pubrel', packetId: packet.packetId, reasonCode: 0 }, outcome === 'written'); // [MQTT-4.3.3-4]
}

export function handlePubcomp(conn: PacketContext, packet: PubackPacket): void {
  if (!conn.session!.completed(packet.packetId)) {
    conn.log.debug({ packetId: packet.packetId }, 'PUBCOMP for unknown packet id');
  }
}
