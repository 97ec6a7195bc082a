/**
 * Composition root: builds the brokers and listeners from the config and wires connections to
 * them. No protocol logic lives here.
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
import { type Listener, listenTcp, listenWebSocket } from './transport/index.ts';

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
    this.listeners.push(await listenTcp(this.config.host, this.config.port, accept));
    if (this.config.wsPort >= 0) this.listeners.push(await listenWebSocket(this.config, accept));
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
  }
}
