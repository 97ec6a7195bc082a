/**
 * Composition root: builds the brokers and listeners from the config and wires connections to
 * them. No protocol logic lives here.
 *
 * TLS (tls, wss listeners) runs when a certificate is configured; `reloadTls` (SIGHUP) swaps
 * the certificate for new handshakes without touching established connections.
 *
 * Shutdown (`close`): stop accepting, tell v5 clients DISCONNECT 0x8B (server shutting down),
 * close every connection, wait for sockets to finish (bounded), then resolve.
 */
import { mkdirSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { Broker } from './broker.ts';
import type { Config } from './config.ts';
import { silentLogger } from './observability/index.ts';
import { Connection, type ConnectionContext, type ConnectionInfo } from './session/connection.ts';
import { type Listener, listenTcp, listenTls, listenWebSocket } from './transport/index.ts';
import { type ServedCertificate, setUpTls, type TlsSetup } from './transport/tls-setup.ts';

export interface ServerOptions {
  logger?: Logger;
}

const SHUTDOWN_WAIT_MS = 2000;

export class Server implements ConnectionContext {
  readonly config: Config;
  readonly logger: Logger;
  readonly connections = new Set<Connection>();
  readonly brokers = new Map<string, Broker>();
  readonly defaultBroker: Broker;
  readonly listeners: Listener[] = [];
  shuttingDown = false;
  #tls: TlsSetup | undefined;

  constructor(config: Config, options: ServerOptions = {}) {
    this.config = config;
    this.logger = options.logger ?? silentLogger();
    this.defaultBroker = new Broker('default', config);
    this.brokers.set(this.defaultBroker.id, this.defaultBroker);
  }

  /** Opens every configured listener. */
  async start(): Promise<void> {
    if (this.config.dataDir !== ':memory:') mkdirSync(this.config.dataDir, { recursive: true });
    const accept = (stream: Duplex, info: ConnectionInfo): void => {
      this.accept(stream, info);
    };
    this.#tls = setUpTls(this.config); // first: unusable certificate files stop the start before any listener opens
    this.listeners.push(await listenTcp(this.config, accept, this.logger));
    if (this.config.wsPort >= 0) this.listeners.push(await listenWebSocket(this.config, accept, this.logger));
    if (this.#tls === undefined) return;
    const { context } = this.#tls;
    if (this.config.tlsPort >= 0)
      this.listeners.push(await listenTls(this.config, context, accept, this.logger));
    if (this.config.wssPort >= 0)
      this.listeners.push(await listenWebSocket(this.config, accept, this.logger, context));
  }

  /** The certificate the TLS listeners serve; undefined when TLS is off. */
  get tlsCertificate(): ServedCertificate | undefined {
    return this.#tls?.certificate;
  }

  /**
   * Re-reads the TLS certificate, key and CA files (SIGHUP): new handshakes use them, established
   * connections are not dropped. Throws, keeping the old certificate in service, when unusable.
   */
  reloadTls(): ServedCertificate {
    if (this.#tls === undefined) throw new Error('TLS is not configured');
    return this.#tls.reload();
  }

  /** Serves one connection from any transport (or an in-memory duplex in tests). */
  accept(socket: Duplex, info: ConnectionInfo): Connection {
    const connection = new Connection(socket, info, this);
    if (this.shuttingDown) {
      socket.destroy();
      return connection;
    }
    this.connections.add(connection);
    return connection;
  }

  brokerFor(): Broker {
    return this.defaultBroker;
  }

  closed(connection: Connection): void {
    this.connections.delete(connection);
  }

  async close(): Promise<void> {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    const listenersClosed = Promise.all(this.listeners.map((l) => l.close()));
    const sockets = [...this.connections].map(
      (c) =>
        new Promise<void>((resolve) =>
          c.socket.destroyed ? resolve() : c.socket.once('close', () => resolve()),
        ),
    );
    for (const c of this.connections) c.disconnect('SERVER_SHUTTING_DOWN', 'server shutting down'); // [MQTT-4.13.2]
    const timeout = new Promise<void>((resolve) => setTimeout(resolve, SHUTDOWN_WAIT_MS).unref());
    await Promise.race([Promise.all(sockets), timeout]);
    for (const c of this.connections) c.socket.destroy();
    await listenersClosed;
    this.#tls?.dispose();
  }
}
