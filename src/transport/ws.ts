/**
 * MQTT over WebSocket (MQTT 5.0 chapter 6) on its own HTTP listener.
 *
 * Upgrade rules, checked before the handshake completes:
 * - the path must be one of the configured paths (default `/mqtt` and `/`): else HTTP 404;
 * - subprotocol: `mqtt` is selected when offered (also `mqttv3.1` and `mqttv5`) [MQTT-6.0.0-3];
 *   a request offering only other subprotocols gets HTTP 400; one offering none is accepted
 *   unless `wsRequireSubprotocol` is set (many clients send none);
 * - permessage-deflate is off unless configured.
 * A plain HTTP request (no upgrade) gets 426 Upgrade Required on a valid path, 404 elsewhere.
 *
 * What one message may cost (`webSocketLimits`): ws buffers a whole message before handing it
 * over, so the largest message is the MQTT maximum packet size (larger, also once inflated:
 * close 1009; until CONNECT is accepted a message may hold at most `maxConnectPacketSize`), and
 * the count of fragments in a message and of received chunks waiting for the rest of a frame
 * are bounded in proportion to it (more: close 1008). Each fragment and chunk
 * costs a few hundred bytes of bookkeeping however small it is, so ws' own bounds (16,384 and
 * 262,144, sized for 100 MiB messages) let a client make one byte cost ~200.
 *
 * Client address: the socket's, or with `wsTrustProxy` an X-Forwarded-For entry counted from
 * the right (`forwardedClient`): proxies append the address they saw, so the rightmost
 * `wsTrustProxyHops` entries were written by proxies we run and everything left of them by the
 * client. An entry that is not an IP address is not taken (the socket's address is used, and
 * the header logged once at warn).
 *
 * The same code serves WSS (`wss://`, default 8884): given a TlsContext it listens with an
 * https server instead of http, applies the client-certificate rule when each handshake
 * finishes (tls.ts `admitSecure`, before HTTP sees the socket), and records SNI and the
 * verified client certificate alongside the Host header. A failed or timed-out handshake is
 * logged and destroyed by tls.ts `refuseHandshake`, before https' own listener (which destroys
 * it too, but silently and leaving no address to log).
 */
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type RequestListener,
  STATUS_CODES,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { isIP, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { WebSocketServer } from 'ws';
import type { Config } from '../config.ts';
import { HTTP_REFUSALS, type HttpRefusal } from '../errors.ts';
import { AcceptPacer } from './accept-pacer.ts';
import type { ConnectionInfo } from './connection-info.ts';
import { bind, hostForUrl, type Listener } from './tcp.ts';
import { admitSecure, HandshakeTracker, refuseHandshake } from './tls.ts';
import type { TlsContext } from './tls-context.ts';
import { WebSocketDuplex } from './websocket-duplex.ts';

/** Subprotocols we speak, in order of preference. */
const MQTT_SUBPROTOCOLS = ['mqtt', 'mqttv3.1', 'mqttv5'];

export type AcceptStream = (stream: Duplex, info: ConnectionInfo) => void;

function offeredSubprotocols(req: IncomingMessage): string[] {
  const header = req.headers['sec-websocket-protocol'];
  if (header === undefined) return [];
  return header
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** `Host: a.b.localhost:8083` → `a.b.localhost`; `[::1]:8083` → `::1`; lower-cased (RFC 7230 5.4). */
export function hostWithoutPort(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const h = header.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(1, h.indexOf(']') > 0 ? h.indexOf(']') : undefined);
  const colon = h.lastIndexOf(':');
  return colon >= 0 ? h.slice(0, colon) : h;
}

/** Refuses an upgrade on the raw socket: the catalogue's status and its standard phrase, no body. */
function refuse(socket: Duplex, refusal: HttpRefusal): void {
  const status = HTTP_REFUSALS[refusal].http;
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  socket.on('error', () => {});
}

/**
 * The client address in an X-Forwarded-For value behind `hops` proxies we run: the entry `hops`
 * from the right, or the leftmost when there are fewer (all of them then written by our
 * proxies). `{ address }` when it is an IP address, `{ invalid }` with the entry when it is not,
 * undefined when there is no header.
 */
export function forwardedClient(
  header: string | string[] | undefined,
  hops: number,
): { address: string } | { invalid: string } | undefined {
  if (header === undefined) return undefined;
  const entries = (Array.isArray(header) ? header.join(',') : header).split(',');
  const entry = entries[Math.max(0, entries.length - hops)]!.trim();
  return isIP(entry) === 0 ? { invalid: entry } : { address: entry };
}

/** Longest piece of a refused X-Forwarded-For entry quoted in the log. */
const LOGGED_ENTRY_MAX = 64;

function clientAddress(
  req: IncomingMessage,
  config: Config,
  logger: Logger,
): { address: string; port: number } {
  const socketAddress = { address: req.socket.remoteAddress ?? 'unknown', port: req.socket.remotePort ?? 0 };
  if (!config.wsTrustProxy) return socketAddress;
  const forwarded = forwardedClient(req.headers['x-forwarded-for'], config.wsTrustProxyHops);
  if (forwarded === undefined) return socketAddress;
  if ('address' in forwarded) return { address: forwarded.address, port: 0 };
  logger.warn(
    {
      remote: `${socketAddress.address}:${socketAddress.port}`,
      entry: forwarded.invalid.slice(0, LOGGED_ENTRY_MAX),
      hops: config.wsTrustProxyHops,
    },
    'X-Forwarded-For entry is not an IP address; using the socket address',
  );
  return socketAddress;
}

/**
 * ws' per-message bounds for a broker taking packets up to `maximumPacketSize` bytes: a message
 * (all its fragments, inflated) at most that; fragments of a message averaging at least 1 KiB
 * (never fewer than 64 allowed); chunks read while a frame is incomplete averaging at least 256
 * bytes, less than any TCP segment or TLS record a sender fills (never fewer than 1,024). Neither
 * count above ws' own default. At the default 1 MiB: 1,024 fragments and 4,096 chunks, about
 * 1 MiB of bookkeeping at worst where ws' defaults allow some 60 MiB.
 */
export function webSocketLimits(maximumPacketSize: number): {
  maxPayload: number;
  maxFragments: number;
  maxBufferedChunks: number;
} {
  const within = (n: number, min: number, max: number): number => Math.min(max, Math.max(min, Math.ceil(n)));
  return {
    maxPayload: maximumPacketSize,
    maxFragments: within(maximumPacketSize / 1024, 64, 16 * 1024),
    maxBufferedChunks: within(maximumPacketSize / 256, 1024, 256 * 1024),
  };
}

type TlsFacts = Pick<ConnectionInfo, 'servername' | 'clientCertificate'>;

/** An http server, or for WSS an https one that admits each TLS client before HTTP reads it. */
function createListeningServer(
  handler: RequestListener,
  tls: TlsContext | undefined,
  logger: Logger,
  noDelay: boolean,
): {
  server: ReturnType<typeof createHttpServer>;
  factsOf: (req: IncomingMessage) => TlsFacts;
  stop: () => void;
} {
  if (tls === undefined)
    return { server: createHttpServer({ noDelay }, handler), factsOf: () => ({}), stop: () => {} };
  const server = createHttpsServer({ ...tls.serverOptions(), noDelay }, handler);
  tls.attach(server);
  const tracker = new HandshakeTracker();
  const facts = new WeakMap<TLSSocket, TlsFacts>();
  server.on('connection', (raw: Socket) => tracker.add(raw));
  // Before http's own listener: a refused client is destroyed before any HTTP byte is parsed.
  server.prependListener('secureConnection', (socket: TLSSocket) => {
    tracker.complete(socket);
    const admitted = admitSecure(socket, tls, logger, 'wss');
    if (admitted) facts.set(socket, admitted);
  });
  server.prependListener('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
    refuseHandshake(logger, 'wss', err, socket, tracker.complete(socket));
  });
  return {
    server,
    factsOf: (req) => facts.get(req.socket as TLSSocket) ?? {},
    stop: () => tracker.destroyAll(),
  };
}

/** The WebSocket listener (`ws://`), or with `tls` the secure one (`wss://`). */
export async function listenWebSocket(
  config: Config,
  accept: AcceptStream,
  logger: Logger,
  tls?: TlsContext,
): Promise<Listener> {
  const paths = new Set(config.wsPaths.split(',').map((p) => p.trim()));
  const wss = new WebSocketServer({
    noServer: true,
    ...webSocketLimits(config.maximumPacketSize),
    perMessageDeflate: config.wsPerMessageDeflate,
    handleProtocols: (offered) => MQTT_SUBPROTOCOLS.find((p) => offered.has(p)) ?? false,
  });
  const { server, factsOf, stop } = createListeningServer(
    (req, res) => {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      const refusal = HTTP_REFUSALS[paths.has(path) ? 'WS_UPGRADE_REQUIRED' : 'WS_PATH_NOT_FOUND'];
      res.writeHead(refusal.http, { 'content-type': 'text/plain' });
      res.end(`${refusal.message}\n`);
    },
    tls,
    logger,
    config.tcpNoDelay,
  );
  let warnedNoFrameLimit = false;
  // Paced at the upgrade, before ws' handshake and the connection's set-up (accept-pacer.ts);
  // the socket is not flowing meanwhile, and the client waits for the 101 before sending MQTT.
  const pacer = new AcceptPacer<Duplex>(config.maxConnectionRate, config.connectTimeout);
  server.on('upgrade', (req, socket, head) => pacer.admit(socket, () => upgrade(req, socket, head)));
  const upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (!paths.has(path)) return refuse(socket, 'WS_PATH_NOT_FOUND');
    const offered = offeredSubprotocols(req);
    const speaksMqtt = offered.some((p) => MQTT_SUBPROTOCOLS.includes(p));
    if (offered.length > 0 && !speaksMqtt) return refuse(socket, 'WS_SUBPROTOCOL_REFUSED');
    if (offered.length === 0 && config.wsRequireSubprotocol) return refuse(socket, 'WS_SUBPROTOCOL_REFUSED');
    wss.handleUpgrade(req, socket, head, (ws) => {
      const { address, port } = clientAddress(req, config, logger);
      const duplex = new WebSocketDuplex(ws);
      // Until CONNECT is accepted, a message may hold no more than the pre-CONNECT packet size:
      // ws buffers a whole message before the parser sees a byte of it.
      if (!duplex.limitFrames(config.maxConnectPacketSize) && !warnedNoFrameLimit) {
        warnedNoFrameLimit = true;
        logger.warn(
          'ws: cannot bound messages before CONNECT (ws internals changed); --max-packet-size applies',
        );
      }
      accept(duplex, {
        transport: tls ? 'wss' : 'ws',
        remoteAddress: address,
        remotePort: port,
        host: hostWithoutPort(req.headers.host),
        ...factsOf(req),
        raiseInputLimit: (maximumPacketSize) => duplex.limitFrames(maximumPacketSize),
      });
    });
  };
  const port = tls ? config.wssPort : config.wsPort;
  const bound = await bind(server, config.host, port, config.listenBacklog);
  const firstPath = [...paths][0] ?? '/mqtt';
  return {
    name: tls ? 'wss' : 'ws',
    url: `${tls ? 'wss' : 'ws'}://${hostForUrl(config.host)}:${bound}${firstPath}`,
    port: bound,
    pacer,
    close: () =>
      new Promise<void>((resolve) => {
        pacer.destroyAll();
        wss.close();
        server.close(() => resolve());
        server.closeAllConnections();
        stop();
      }),
  };
}
