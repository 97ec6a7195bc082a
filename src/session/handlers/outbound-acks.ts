/**
 * Acknowledgements of the server's own PUBLISHes: PUBACK ends a QoS 1 exchange, PUBREC moves
 * a QoS 2 exchange on (answered by PUBREL) and PUBCOMP ends it. Acks for ids the session does
 * not know are ignored (v3) or, for PUBREC, answered with PUBREL 0x92 in v5 (section 4.3.3).
 */
import type { PubackPacket } from '../../protocol/index.ts';
import type { PacketContext } from '../handler-context.ts';

export function handlePuback(conn: PacketContext, packet: PubackPacket): void {
  if (!conn.session!.acknowledge(packet.packetId)) {
    conn.log.debug({ packetId: packet.packetId }, 'PUBACK for unknown packet id');
  }
}

export function handlePubrec(conn: PacketContext, packet: PubackPacket): void {
  const session = conn.session!;
  const store = conn.broker!.store;
  const writes = store.writes;
  if (!session.received(packet.packetId, packet.reasonCode)) {
    conn.send({ type: 'pubrel', packetId: packet.packetId, reasonCode: 0x92 });
    return;
  }
  // PUBREL once the PUBREC'd state is stored: a restart then re-sends PUBREL, not the PUBLISH.
  if (packet.reasonCode < 0x80)
    conn.sendDurable({ type: 'pubrel', packetId: packet.packetId, reasonCode: 0 }, store.writes !== writes); // [MQTT-4.3.3-4]
}

export function handlePubcomp(conn: PacketContext, packet: PubackPacket): void {
  if (!conn.session!.completed(packet.packetId)) {
    conn.log.debug({ packetId: packet.packetId }, 'PUBCOMP for unknown packet id');
  }
}
