/** PINGREQ → PINGRESP [MQTT-3.12.4-1]. Keep alive is refreshed by any received bytes. */
import type { PacketContext } from '../handler-context.ts';

export function handlePingreq(conn: PacketContext): void {
  conn.send({ type: 'pingresp' });
}
