/**
 * MQTT over TLS (`mqtts://`, default port 8883), and the TLS pieces the WSS listener shares.
 *
 * A plain net.Server accepts; each raw socket optionally passes the PROXY gate (its header is
 * plain text/binary BEFORE the TLS handshake), then is handed to a tls.Server that never listens
 * itself, by emitting 'connection' on it. The tls.Server does the handshake with the
 * TlsContext's material and policy (tls-context.ts; swapped on SIGHUP by setSecureContext) and
 * emits 'secureConnection'; `admitSecure` applies the client-certificate rule and records SNI.
 *
 * Every socket is closed by us, not left to Node, in the two places Node leaves it open:
 * - a failed handshake (`tlsClientError`): Node destroys the socket for a bad ClientHello but
 *   not when `handshakeTimeout` expires, so a peer that connects and sends nothing would hold
 *   its descriptor for good; `refuseHandshake` logs it once and destroys it;
 * - an error after the handshake (a fatal alert, a renegotiation refused or flagged as an
 *   attack): a TLSSocket, unlike a net.Socket, stays open after 'error' once its handshake is
 *   done, with a TLS state that can carry nothing more; `closeOnTlsError` destroys it.
 *
 * The PROXY address travels from the raw socket to its TLSSocket by the connection's endpoints
 * (remote and local address and port), which identify one open TCP connection and which the
 * TLSSocket reports the same as its raw socket; `HandshakeTracker` keeps that map and destroys
 * the sockets still mid-handshake when the listener closes (a stalled handshake must not hold
 * shutdown up until its timeout).
 */
import { createServer as createNetServer, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import { AcceptPacer } from './accept-pacer.ts';
import type { ConnectionInfo } from './connection-info.ts';
import { ProxyGate } from './proxy-header-reader.ts';
import type { Endpoint } from './proxy-protocol.ts';
import { type Accept, bind, clientEndpoint, hostForUrl, type Listener } from './tcp.ts';
import type { TlsContext } from './tls-context.ts';

const peerKey = (s: Socket): string => `${s.remoteAddress}|${s.remotePort}|${s.localAddress}|${s.localPort}`;

/** Raw sockets of a TLS listener from accept until their handshake completes. */
export class HandshakeTracker {
  readonly #byPeer = new Map<string, { socket: Socket; client: Endpoint | undefined }>();

  add(socket: Socket, client?: Endpoint): void {
    const key = peerKey(socket);
    this.#byPeer.set(key, { socket, client });
    socket.once('close', () => {
      if (this.#byPeer.get(key)?.socket === socket) this.#byPeer.delete(key);
    });
  }

  /** The handshake of `secure` is done: forget its raw socket, return the PROXY address it came with. */
  complete(secure: TLSSocket): Endpoint | undefined {
    const key = peerKey(secure);
    const entry = this.#byPeer.get(key);
    this.#byPeer.delete(key);
    return entry?.client;
  }

  destroyAll(): void {
    for (const { socket } of this.#byPeer.values()) socket.destroy();
    this.#byPeer.clear();
  }
}

/**
 * The peer's address for a log line: the PROXY header's client, else the socket's; undefined
 * (left out of the line) when neither is known, as for a socket whose peer reset it mid-handshake.
 */
function remoteOf(s: Socket, client?: Endpoint): string | undefined {
  if (client !== undefined) return `${client.address}:${client.port}`;
  return s.remoteAddress === undefined ? undefined : `${s.remoteAddress}:${s.remotePort}`;
}

/**
 * After a handshake: the TLS facts of the connection (SNI, verified client certificate), or
 * undefined when the client-certificate rule refuses it (logged once, socket destroyed).
 */
export function admitSecure(
  socket: TLSSocket,
  context: TlsContext,
  logger: Logger,
  listener: string,
  client?: Endpoint,
): Pick<ConnectionInfo, 'servername' | 'clientCertificate'> | undefined {
  const verdict = context.verifyPeer(socket);
  if (!verdict.accepted) {
    logger.warn({ remote: remoteOf(socket, client), listener, reason: verdict.reason }, 'TLS client refused');
    socket.destroy();
    return undefined;
  }
  const info: Pick<ConnectionInfo, 'servername' | 'clientCertificate'> = {};
  if (typeof socket.servername === 'string' && socket.servername !== '') info.servername = socket.servername;
  if (verdict.clientCertificate) info.clientCertificate = verdict.clientCertificate;
  return info;
}

/**
 * A handshake failed or timed out (`tlsClientError`): logged once, the socket destroyed. At warn
 * when the client sent something TLS refused (a scanner, a client distrusting our certificate, a
 * protocol or cipher mismatch) or nothing in time (ERR_TLS_HANDSHAKE_TIMEOUT), at debug when it
 * just went away mid-handshake (a load balancer's TCP health check does exactly that).
 */
export function refuseHandshake(
  logger: Logger,
  listener: string,
  err: NodeJS.ErrnoException,
  socket: Socket,
  client?: Endpoint,
): void {
  const fields = {
    remote: remoteOf(socket, client),
    listener,
    reason: err.code ?? err.message,
  };
  if (err.code === 'ECONNRESET') logger.debug(fields, 'client left during the TLS handshake');
  else logger.warn(fields, 'TLS handshake failed');
  socket.destroy();
}

/**
 * Destroys an established TLS socket on its first error; the connection that owns it logs the
 * error (at debug) and cleans up on the 'close' that follows.
 */
function closeOnTlsError(socket: TLSSocket): void {
  socket.once('error', () => socket.destroy());
}

export async function listenTls(
  config: Config,
  context: TlsContext,
  accept: Accept,
  logger: Logger,
): Promise<Listener> {
  const tracker = new HandshakeTracker();
  const gate = config.proxyProtocol ? new ProxyGate('tls', config.connectTimeout, logger) : undefined;
  const tlsServer = createTlsServer(context.serverOptions());
  context.attach(tlsServer);
  tlsServer.on('secureConnection', (socket: TLSSocket) => {
    const client = tracker.complete(socket);
    const tlsFacts = admitSecure(socket, context, logger, 'tls', client);
    if (tlsFacts === undefined) return;
    closeOnTlsError(socket);
    const { address, port } = clientEndpoint(socket, client);
    accept(socket, { transport: 'tls', remoteAddress: address, remotePort: port, ...tlsFacts });
  });
  tlsServer.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
    refuseHandshake(logger, 'tls', err, socket, tracker.complete(socket));
  });
  const handOver = (raw: Socket, client: Endpoint | undefined): void => {
    raw.setNoDelay(config.tcpNoDelay);
    tracker.add(raw, client);
    tlsServer.emit('connection', raw);
  };
  // Paced before the handshake, the costly part of a TLS arrival (accept-pacer.ts).
  const pacer = new AcceptPacer<Socket>(config.maxConnectionRate, config.connectTimeout);
  const paced = config.maxConnectionRate > 0;
  const takeOn = (raw: Socket): void => {
    if (gate === undefined) return handOver(raw, undefined);
    if (paced) raw.resume(); // created paused (pauseOnConnect) while it waited its turn
    gate.admit(raw, (client) => handOver(raw, client)); // left paused: the TLS socket reads the rest
  };
  const server = createNetServer({ pauseOnConnect: paced }, (raw) => pacer.admit(raw, takeOn));
  const bound = await bind(server, config.host, config.tlsPort, config.listenBacklog);
  return {
    name: 'tls',
    url: `mqtts://${hostForUrl(config.host)}:${bound}`,
    port: bound,
    pacer,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        pacer.destroyAll();
        tlsServer.close();
        gate?.destroyAll();
        tracker.destroyAll();
      }),
  };
}
