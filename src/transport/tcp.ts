/**
 * MQTT over plain TCP. Accepts sockets and hands each to the server as a Duplex with its
 * connection info. Nagle is off: the connection corks its writes per event-loop turn, which
 * already batches small packets without Nagle's delay.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { ConnectionInfo } from '../session/connection.ts';

export interface Listener {
  readonly name: string;
  /** URL clients connect to, e.g. mqtt://127.0.0.1:1883. */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

export type Accept = (socket: Socket, info: ConnectionInfo) => void;

export async function listenTcp(host: string, port: number, accept: Accept): Promise<Listener> {
  const server: Server = createServer({ noDelay: true }, (socket) => {
    accept(socket, {
      transport: 'tcp',
      remoteAddress: socket.remoteAddress ?? 'unknown',
      remotePort: socket.remotePort ?? 0,
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const bound = typeof address === 'object' && address !== null ? address.port : port;
  const hostForUrl = host.includes(':') ? `[${host}]` : host;
  return {
    name: 'mqtt',
    url: `mqtt://${hostForUrl}:${bound}`,
    port: bound,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
