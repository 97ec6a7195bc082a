/**
 * Client DISCONNECT. v5 may change the session expiry, but not from 0 to non-zero
 * (section 3.14.2.2.2); reason 0x04 asks for the will to be published, any other discards it
 * [MQTT-3.14.4-3].
 */
import type { DisconnectPacket } from '../../protocol/index.ts';
import type { PacketContext } from '../handler-context.ts';

export function handleDisconnect(conn: PacketContext, packet: DisconnectPacket): void {
  const session = conn.session!;
  const expiry = packet.properties?.sessionExpiryInterval;
  if (expiry !== undefined) {
    if (session.expiryInterval === 0 && expiry !== 0) {
      return conn.disconnect('PROTOCOL_ERROR', 'session expiry changed from 0 on DISCONNECT'); // section 3.14.2.2.2
    }
    session.expiryInterval = Math.min(expiry, conn.config.maxSessionExpiryInterval);
  }
  conn.clientDisconnected(packet.reasonCode);
}
