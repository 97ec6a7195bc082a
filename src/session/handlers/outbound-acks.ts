/**
 * Acknowledgements of the server's own PUBLISHes: PUBACK ends a QoS 1 exchange, PUBREC moves
 * a QoS 2 exchange on (answered by PUBREL) and PUBCOMP ends it.
 *
 * An acknowledgement of the wrong type for an id in flight (PUBREC or PUBCOMP for a QoS 1
 * message, PUBACK for a QoS 2 one, PUBCOMP before the PUBREC) breaks the exchange's order
 * (sections 4.3.2, 4.3.3): a protocol error, v5 DISCONNECT 0x82 [MQTT-4.13.1-1], v3 close
 * [MQTT-4.8.0-1]. Acks for ids the session does not know are not errors: PUBACK and PUBCOMP
 * are ignored, PUBREC is answered with PUBREL 0x92 in v5, whose reason table (section
 * 3.6.2.1) names that case ("not an error during recovery"), and with PUBREL in v3.
 */
import { isFailureReason, reasonCodeOf } from '../../errors.ts';
import type { PubackPacket } from '../../protocol/index.ts';
import type { PacketContext } from '../handler-context.ts';
import type { AckOutcome } from '../session-outcomes.ts';

const PACKET_ID_NOT_FOUND = reasonCodeOf('PACKET_ID_NOT_FOUND');

export function handlePuback(conn: PacketContext, packet: PubackPacket): void {
  settled(conn, packet, conn.session!.acknowledge(packet.packetId));
}

export function handlePubrec(conn: PacketContext, packet: PubackPacket): void {
  const outcome = conn.session!.received(packet.packetId, packet.reasonCode);
  if (outcome === 'unknown') {
    conn.send({ type: 'pubrel', packetId: packet.packetId, reasonCode: PACKET_ID_NOT_FOUND });
    return;
  }
  if (!settled(conn, packet, outcome)) return;
  // PUBREL once the PUBREC'd state is stored: a restart then re-sends PUBREL, not the PUBLISH.
  if (!isFailureReason(packet.reasonCode))
    conn.sendDurable({ type: 'pubrel', packetId: packet.packetId, reasonCode: 0 }, outcome === 'written'); // [MQTT-4.3.3-4]
}

export function handlePubcomp(conn: PacketContext, packet: PubackPacket): void {
  settled(conn, packet, conn.session!.completed(packet.packetId));
}

/** False when the ack closed the connection (wrong type); an unknown id is logged and ignored. */
function settled(conn: PacketContext, packet: PubackPacket, outcome: AckOutcome): boolean {
  if (outcome === 'mismatched') {
    conn.disconnect(
      'PROTOCOL_ERROR',
      `${packet.type} for packet id ${packet.packetId}, which awaits another acknowledgement`,
    ); // [MQTT-4.8.0-1]
    return false;
  }
  if (outcome === 'unknown')
    conn.log.debug({ packetId: packet.packetId }, `${packet.type} for unknown packet id`);
  return true;
}
