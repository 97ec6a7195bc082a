/** PINGREQ → PINGRESP [MQTT-3.12.4-1]. Keep alive is refreshed by any received bytes. */
import type { Connection } from '../connection.ts';

export function handlePingreq(conn: Connection): void {
  conn.send({ type: 'pingresp' });
}
