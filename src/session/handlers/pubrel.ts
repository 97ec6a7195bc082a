/** Inbound PUBREL: releases a QoS 2 packet id and answers PUBCOMP [MQTT-4.3.3-11]. */
import { reasonCodeOf } from '../../errors.ts';
import type { PubackPacket } from '../../protocol/index.ts';
import type { PacketContext } from '../handler-context.ts';

const PACKET_ID_NOT_FOUND = reasonCodeOf('PACKET_ID_NOT_FOUND');

export function handlePubrel(conn: PacketContext, packet: PubackPacket): void {
  const outcome = conn.session!.releaseInboundQos2(packet.packetId);
  // v5: an unknown id is answered with 0x92 (Packet Identifier not found); v3 just completes.
  // A stored id is forgotten on disk before PUBCOMP frees the client to reuse it.
  conn.sendDurable(
    {
      type: 'pubcomp',
      packetId: packet.packetId,
      reasonCode: outcome === 'unknown' ? PACKET_ID_NOT_FOUND : 0,
    },
    outcome === 'written',
  );
}
