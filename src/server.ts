/**
 * Composition root: opens the store, builds the tenants (bootstrapping an empty data dir), the
 * MQTT listeners and the admin API, and wires each connection to its broker. No protocol logic
 * lives here.
 *
 * Start-up files in the data dir (not with `:memory:`): `pubsub.lock` (taken first, before the
 * store opens: one server per data dir; a second one's constructor throws DataDirLockedError;
 * removed by `close`), `node-name` (the node's name, store/node-name.ts), `pubsub.db` (the store), `admin-token` (mode 0600, written at the first
 * start only) and `api-url` (the admin API's base URL, rewritten at each start) so the CLI on
 * the same machine needs no set-up.
 *
 * TLS (tls, wss listeners) runs when a certificate is configured; `reloadTls` (SIGHUP) swaps
 * the certificate for new handshakes without touching established connections.
 *
 * Shutdown (`close`): stop accepting, tell v5 clients DISCONNECT 0x8B (server shutting down),
 * close every connection, wait for sockets to finish (bounded), then resolve.
 */
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DatabaseSync } from 'node:sqlite';
import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { buildApi, type ListenerPorts } from './admin/index.ts';
import { type FailureLimiter, hashApiToken } from './auth/index.ts';
import { type Broker, InputShedding, SysTicker } from './broker/index.ts';
import type { Cluster } from './cluster/index.ts';
import type { Config } from './config.ts';
import { FunctionWorkerPool, type HostResolver } from './hooks/index.ts';
import {
  defaultMemoryLimit,
  EventLoopWatch,
  LogSampler,
  type MemoryProbe,
  OverloadWatch,
  silentLogger,
} from './observability/index.ts';
import type { ConnectPacket } from './protocol/index.ts';
import {
  type Admitted,
  Connection,
  type ConnectionContext,
  ConnectionGuard,
  type Refused,
  WriteBudget,
} from './session/index.ts';
import {
  AuditStore,
  type ControlPlaneStore,
  DataDirLock,
  ensureDataDir,
  JournaledMessageStore,
  MemoryMessageStore,
  type MessageStore,
  openDatabase,
  resolveNodeName,
  SqliteMessageStore,
  tenancyStores,
} from './store/index.ts';
import { type BootstrapResult, Tenancy } from './tenancy/index.ts';
import {
  type ConnectionInfo,
  type Listener,
  listenTcp,
  listenTls,
  listenWebSocket,
} from './transport/index.ts';
import { type ServedCertificate, setUpTls, type TlsSetup } from './transport/tls-setup.ts';

export interface ServerOptions {
  logger?: Logger;
  /** What the overload watch reads of memory, instead of this process's (embedding, tests). */
  memoryProbe?: MemoryProbe;
  /** A message store to use instead of the data dir's (embedding, tests); the server closes it. */
  messageStore?: MessageStore;
  /** How webhook host names resolve, instead of the system's DNS (tests: names without DNS). */
  resolveHost?: HostResolver;
}

const SHUTDOWN_WAIT_MS = 2000;

/** `file` when the token it holds is the account's one and only API token, else undefined. */
function soleTokenFile(store: ControlPlaneStore, accountId: string, file: string): string | undefined {
  let secret: string;
  try {
    secret = readFileSync(file, 'utf8').trim();
  } catch {
    return undefined; // gone or unreadable: nothing to point at
  }
  const tokens = store.listApiTokens(accountId);
  return tokens.length === 1 && store.apiTokenByHash(hashApiToken(secret))?.id === tokens[0]!.id
    ? file
    : undefined;
}

export class Server implements ConnectionContext {
  readonly config: Config;
  readonly logger: Logger;
  /** This node's name (`--node-name`, else the data dir's, else the host name): in every log line and metric. */
  readonly nodeName: string;
  readonly connections = new Set<Connection>();
  /**
   * The subset of `connections` not past CONNECT yet (awaiting it, or in an enhanced
   * authentication): unauthenticated, each holding at most maxConnectPacketSize, each closed by
   * the connect timeout. Counted apart so that a cap can bound them.
   */
  readonly awaitingConnect = new Set<Connection>();
  readonly listeners: Listener[] = [];
  readonly tenancy: Tenancy;
  /** The account, and the admin token when this start created it (print it once). */
  readonly bootstrap: BootstrapResult;
  /**
   * `<data-dir>/admin-token` while the token it holds is the account's only API token (so it is
   * still the way in: the banner names the file at every start); undefined once another token
   * exists, when the file is gone or its token revoked, and with `:memory:`.
   */
  readonly bootstrapTokenFile: string | undefined;
  /** The admin API's base URL once listening (`http://host:port`). */
  apiUrl: string | undefined;
  shuttingDown = false;
  /** Unsent bytes of every connection together, against `--max-total-write-buffer`. */
  readonly writeBudget: WriteBudget;
  #db: DatabaseSync;
  #lock: DataDirLock | undefined;
  /** Cluster mode: the message store whose session writes the cluster journals. */
  #journaled: JournaledMessageStore | undefined;
  /** Retained messages and persistent sessions: SQLite in the data dir, memory for `:memory:`. */
  readonly messageStore: MessageStore;
  #api: FastifyInstance | undefined;
  #ready = false;
  /** Event-loop stalls, for GET /livez. */
  readonly #eventLoop = new EventLoopWatch();
  /** Memory, heap and lag against their limits: while over, new connections are refused (0x89). */
  readonly overload: OverloadWatch;
  /** While overloaded, the readers of the heaviest brokers are paused (broker/input-shedding.ts). */
  readonly inputShedding: InputShedding;
  /** Process-wide CONNECT admission: the overload verdict, connection caps, client-id connect rate. */
  readonly guard: ConnectionGuard;
  /** `--client-log-rate`: connect, disconnect, takeover and refused-connect lines. */
  readonly clientLog: LogSampler;
  /** Refreshes every broker's $SYS tree each `--sys-interval` (src/broker/sys-tree.ts). */
  readonly #sysTicker: SysTicker;
  #tls: TlsSetup | undefined;
  /** Worker threads for sandboxed functions; none start before the first deployment. */
  readonly functionPool: FunctionWorkerPool;
  /** Cluster mode (`--cluster`): this node's link to the others; src/cluster is loaded only then. */
  cluster: Cluster | undefined;

  constructor(config: Config, options: ServerOptions = {}) {
    this.config = config;
    this.#sysTicker = new SysTicker(config.sysInterval, () => this.#brokers());
    let shedding: InputShedding | undefined;
    const onDisk = config.dataDir !== ':memory:';
    if (onDisk) {
      ensureDataDir(config.dataDir);
      this.#lock = DataDirLock.acquire(config.dataDir);
    }
    try {
      this.nodeName = resolveNodeName(config.dataDir, config.nodeName);
      this.logger = (options.logger ?? silentLogger()).child({ node: this.nodeName });
      this.functionPool = new FunctionWorkerPool(config.hookWorkers, this.logger);
      this.overload = new OverloadWatch({
        maxMemoryBytes: config.maxMemory > 0 ? config.maxMemory * 1024 * 1024 : defaultMemoryLimit(),
        maxLagMs: config.maxEventLoopLag,
        logger: this.logger,
        ...(options.memoryProbe === undefined ? {} : { probe: options.memoryProbe }),
        onVerdict: (overloaded) => shedding?.judge(overloaded),
      });
      this.guard = new ConnectionGuard(config, this.overload);
      this.writeBudget = new WriteBudget(config.maxTotalWriteBufferBytes, this.overload);
      this.inputShedding = shedding = new InputShedding(() => this.#brokers(), this.logger);
      this.clientLog = new LogSampler(config.clientLogRate);
      this.#db = openDatabase(config.dataDir);
      const messageStore =
        options.messageStore ??
        (onDisk
          ? new SqliteMessageStore(this.#db, { batchMs: config.storeBatchMs, logger: this.logger })
          : new MemoryMessageStore());
      // Cluster mode: session writes also go to the cluster's journal once the cluster attaches it.
      this.messageStore =
        config.cluster === '' ? messageStore : (this.#journaled = new JournaledMessageStore(messageStore));
      const stores = tenancyStores(this.#db);
      const loadStart = performance.now();
      this.tenancy = new Tenancy(
        stores,
        config,
        this.logger,
        this.messageStore,
        (hook) => this.functionPool.deploy(hook),
        options.resolveHost,
      );
      this.#logLoaded(performance.now() - loadStart);
      this.bootstrap = this.tenancy.bootstrap();
      const tokenFile = join(config.dataDir, 'admin-token');
      if (this.bootstrap.adminToken !== undefined && onDisk) {
        writeFileSync(tokenFile, `${this.bootstrap.adminToken}\n`, { mode: 0o600 });
        chmodSync(tokenFile, 0o600);
      }
      this.bootstrapTokenFile = onDisk
        ? soleTokenFile(stores.controlPlane, this.bootstrap.account.id, tokenFile)
        : undefined;
    } catch (err) {
      this.#lock?.release();
      throw err;
    }
  }

  #logLoaded(ms: number): void {
    let retained = 0;
    let sessions = 0;
    for (const tenant of this.tenancy.tenants()) {
      retained += tenant.broker.retained.size;
      sessions += tenant.broker.sessions.size;
    }
    if (retained + sessions > 0)
      this.logger.info({ retained, sessions, ms: Math.round(ms) }, 'retained messages and sessions loaded');
  }

  *#brokers(): Iterable<Broker> {
    for (const tenant of this.tenancy.tenants()) yield tenant.broker;
  }

  /** The broker of connections whose host name names none (tests and embedding use it). */
  /** The brute-force limiter (tenancy's): enhanced-authentication failures count there too. */
  get authFailures(): FailureLimiter {
    return this.tenancy.authFailures;
  }

  get defaultBroker(): Broker {
    const tenant = this.tenancy.defaultTenant();
    if (tenant === undefined) throw new Error(`default broker ${this.config.defaultBroker} does not exist`);
    return tenant.broker;
  }

  /** Opens every configured listener, then the admin API. */
  async start(): Promise<void> {
    const accept = (stream: Duplex, info: ConnectionInfo): void => {
      this.accept(stream, info);
    };
    this.#tls = setUpTls(this.config); // first: unusable certificate files stop the start before any listener opens
    this.listeners.push(await listenTcp(this.config, accept, this.logger));
    if (this.config.wsPort >= 0) this.listeners.push(await listenWebSocket(this.config, accept, this.logger));
    if (this.#tls !== undefined) {
      const { context } = this.#tls;
      if (this.config.tlsPort >= 0)
        this.listeners.push(await listenTls(this.config, context, accept, this.logger));
      if (this.config.wssPort >= 0)
        this.listeners.push(await listenWebSocket(this.config, accept, this.logger, context));
    }
    if (this.config.cluster !== '') await this.#joinCluster();
    if (this.config.httpPort >= 0) await this.#startApi();
    this.#eventLoop.start();
    this.overload.start();
    this.#sysTicker.start();
    this.#ready = true;
  }

  /**
   * Loads src/cluster (only now: a single node never loads the NATS client) and starts joining;
   * NATS being unreachable does not stop the start: the link retries and /readyz says so.
   */
  async #joinCluster(): Promise<void> {
    const { Cluster } = await import('./cluster/index.ts');
    this.cluster = new Cluster({
      config: this.config,
      logger: this.logger,
      nodeName: this.nodeName,
      tenancy: this.tenancy,
      connections: () => this.connections.size - this.awaitingConnect.size,
      apiUrl: () => this.apiUrl,
      store: this.#journaled,
    });
    this.cluster.start();
  }

  /**
   * The readiness checks (GET /readyz), true while passing: `listeners`, every listener bound
   * and the server not shutting down; `store`, the message store committing (a failed commit,
   * e.g. a full disk, fails it until a retry succeeds: QoS 1/2 publishes are refused meanwhile);
   * in cluster mode `cluster`, the link to NATS up, the cluster's control plane synced and the
   * retained messages caught up with the cluster's (at start).
   */
  readiness(): { listeners: boolean; store: boolean; cluster?: boolean } {
    const checks = {
      listeners: this.#ready && !this.shuttingDown,
      store: this.messageStore.failed === undefined,
    };
    return this.cluster === undefined ? checks : { ...checks, cluster: this.cluster.ready };
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

  async #startApi(): Promise<void> {
    const api = await buildApi({
      tenancy: this.tenancy,
      config: this.config,
      logger: this.logger,
      nodeName: this.nodeName,
      audit: new AuditStore(this.#db),
      ports: () => this.listenerPorts(),
      readiness: () => this.readiness(),
      cluster: this.cluster,
      eventLoopStallMs: () => this.#eventLoop.stallMs(),
      protection: {
        guard: this.guard,
        overload: this.overload,
        clientLog: this.clientLog,
        writeBudget: this.writeBudget,
        listeners: () => this.listeners,
      },
    });
    this.#api = api;
    await api.listen({ port: this.config.httpPort, host: this.config.host });
    const address = api.server.address();
    const port = typeof address === 'object' && address !== null ? address.port : this.config.httpPort;
    const host = this.config.host.includes(':') ? `[${this.config.host}]` : this.config.host;
    this.apiUrl = `http://${host}:${port}`;
    if (this.config.dataDir !== ':memory:')
      writeFileSync(join(this.config.dataDir, 'api-url'), `${this.apiUrl}\n`);
  }

  /** Bound ports of the MQTT listeners by URL scheme (for broker endpoints). */
  listenerPorts(): ListenerPorts {
    const ports: ListenerPorts = {};
    for (const l of this.listeners) {
      const scheme = l.url.slice(0, l.url.indexOf(':')) as keyof ListenerPorts;
      if (ports[scheme] === undefined) ports[scheme] = l.port;
    }
    return ports;
  }

  /** Serves one connection from any transport (or an in-memory duplex in tests). */
  accept(socket: Duplex, info: ConnectionInfo): Connection {
    const connection = new Connection(socket, info, this);
    if (this.shuttingDown) {
      socket.destroy();
      return connection;
    }
    this.connections.add(connection);
    this.awaitingConnect.add(connection);
    return connection;
  }

  brokerFor(connection: Connection, connect: ConnectPacket): Admitted | Refused {
    const admission = this.tenancy.admit(connection.info, connect);
    if ('refuse' in admission)
      return {
        refuse: admission.refuse,
        detail: admission.detail,
        broker: admission.tenant?.broker,
        delayMs: admission.delayMs,
      };
    return { broker: admission.tenant.broker, identity: admission.identity, clientId: admission.clientId };
  }

  admitted(connection: Connection): void {
    this.awaitingConnect.delete(connection);
  }

  closed(connection: Connection): void {
    this.connections.delete(connection);
    this.awaitingConnect.delete(connection);
    this.guard.release(connection);
  }

  async close(): Promise<void> {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    this.#eventLoop.stop();
    this.overload.stop();
    this.#sysTicker.stop();
    const apiClosed = this.#api?.close();
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
    await apiClosed;
    await this.cluster?.close();
    this.tenancy.close();
    await this.functionPool.close();
    this.messageStore.close();
    this.#db.close();
    this.#lock?.release();
  }
}
