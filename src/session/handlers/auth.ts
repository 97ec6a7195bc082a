/**
 * AUTH. Enhanced authentication is not offered (a CONNECT naming a method is refused with
 * 0x8C, section 4.12), so no AUTH exchange can be in progress and any AUTH is a protocol error.
 */
import type { Connection } from '../connection.ts';

export function handleAuth(conn: Connection): void {
  conn.disconnect('PROTOCOL_ERROR', 'AUTH without an authentication method');
}
