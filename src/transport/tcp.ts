/**
 * MQTT over plain TCP. Accepts sockets and hands each to the server as a Duplex with its
 * connection info. Nagle is off: the connection corks its writes per event-loop turn, which
 * already batches small packets without Nagle's delay.
 *
 * With `proxyProtocol`, every connection must open with a PROXY v1/v2 header (proxy-protocol.ts)
 * carrying the client's address; one without a valid header in time is closed and logged.
 *
 * With `maxConnectionRate`, arrivals are paced (accept-pacer.ts): a socket is created paused
 * (`pauseOnConnect`) and read only once the pacer hands it over.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import { AcceptPacer, type PacingFigures } from './accept-pacer.ts';
import type { ConnectionInfo } from './connection-info.ts';
import { ProxyGate } from './proxy-header-reader.ts';
import type { Endpoint } from './proxy-protocol.ts';

export interface Listener {
  readonly name: string;
  /** URL clients connect to, e.g. mqtt://127.0.0.1:1883. */
  readonly url: string;
  readonly port: number;
  /** Its `--max-connection-rate` pacing (counters for the metrics). */
  readonly pacer: PacingFigures;
  close(): Promise<void>;
}

export type Accept = (socket: Socket, info: ConnectionInfo) => void;

/**
 * Binds `server` to host:port with a listen backlog of `backlog` (`--listen-backlog`);
 * resolves with the bound port (the OS's pick for port 0).
 */
export async function bind(server: Server, host: string, port: number, backlog: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, backlog }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  return typeof address === 'object' && address !== null ? address.port : port;
}

/** `::1` → `[::1]` for URLs. */
export const hostForUrl = (host: string): string => (host.includes(':') ? `[${host}]` : host);

/** The client's address: from the PROXY header when there is one, else the socket's. */
export function clientEndpoint(socket: Socket, proxied: Endpoint | undefined): Endpoint {
  return proxied ?? { address: socket.remoteAddress ?? 'unknown', port: socket.remotePort ?? 0 };
}

export async function listenTcp(config: Config, accept: Accept, logger: Logger): Promise<Listener> {
  const gate = config.proxyProtocol ? new ProxyGate('mqtt', config.connectTimeout, logger) : undefined;
  const admit = (socket: Socket, proxied: Endpoint | undefined): void => {
    const client = clientEndpoint(socket, proxied);
    accept(socket, { transport: 'tcp', remoteAddress: client.address, remotePort: client.port });
  };
  const pacer = new AcceptPacer<Socket>(config.maxConnectionRate, config.connectTimeout);
  const paced = config.maxConnectionRate > 0;
  const takeOn = (socket: Socket): void => {
    if (paced) socket.resume(); // created paused (pauseOnConnect) while it waited its turn
    if (gate === undefined) return admit(socket, undefined);
    gate.admit(socket, (proxied) => {
      admit(socket, proxied);
      socket.resume(); // the gate left it paused with the client's first bytes pushed back
    });
  };
  const server: Server = createServer({ noDelay: config.tcpNoDelay, pauseOnConnect: paced }, (socket) =>
    pacer.admit(socket, takeOn),
  );
  const bound = await bind(server, config.host, config.port, config.listenBacklog);
  return {
    name: 'mqtt',
    url: `mqtt://${hostForUrl(config.host)}:${bound}`,
    port: bound,
    pacer,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        pacer.destroyAll();
        gate?.destroyAll();
      }),
  };
}
