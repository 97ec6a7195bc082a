/**
 * The one place that enforces packet order and direction: CONNECT first and exactly once
 * [MQTT-3.1.0-1], [MQTT-3.1.0-2]; while an enhanced authentication runs before CONNACK only
 * AUTH (or DISCONNECT) may come (section 4.12); packets only a server sends are protocol
 * errors when a client sends them. Each accepted packet goes to its handler file.
 */
import type { Packet } from '../protocol/index.ts';
import type { PacketContext } from './handler-context.ts';
import {
  handleAuth,
  handleConnect,
  handleDisconnect,
  handlePingreq,
  handlePuback,
  handlePubcomp,
  handlePublish,
  handlePubrec,
  handlePubrel,
  handleSubscribe,
  handleUnsubscribe,
} from './handlers/index.ts';

export function dispatch(conn: PacketContext, packet: Packet): void {
  if (conn.state === 'awaiting-connect') {
    if (packet.type !== 'connect') {
      conn.disconnect('PROTOCOL_ERROR', `first packet is ${packet.type}, not CONNECT`); // [MQTT-3.1.0-1]
      return;
    }
    handleConnect(conn, packet);
    return;
  }
  if (conn.state === 'authenticating') {
    if (packet.type === 'auth') return handleAuth(conn, packet);
    if (packet.type === 'disconnect') return conn.clientDisconnected(packet.reasonCode);
    return conn.disconnect('PROTOCOL_ERROR', `${packet.type} before authentication completed`); // section 4.12
  }
  switch (packet.type) {
    case 'publish':
      return handlePublish(conn, packet);
    case 'puback':
      return handlePuback(conn, packet);
    case 'pubrec':
      return handlePubrec(conn, packet);
    case 'pubrel':
      return handlePubrel(conn, packet);
    case 'pubcomp':
      return handlePubcomp(conn, packet);
    case 'subscribe':
      return handleSubscribe(conn, packet);
    case 'unsubscribe':
      return handleUnsubscribe(conn, packet);
    case 'pingreq':
      return handlePingreq(conn);
    case 'disconnect':
      return handleDisconnect(conn, packet);
    case 'auth':
      return handleAuth(conn, packet);
    case 'connect':
      return conn.disconnect('PROTOCOL_ERROR', 'second CONNECT'); // [MQTT-3.1.0-2]
    default:
      return conn.disconnect('PROTOCOL_ERROR', `${packet.type} is sent only by servers`);
  }
}
