/**
 * The node's one connection to NATS (`--cluster`), and its state as the rest of the node sees it.
 *
 * - At start the link connects; NATS unreachable is said once (a warning naming the servers and
 *   the error) and retried every second until it answers, then "cluster link up".
 * - Once connected, the client reconnects by itself for ever; a lost link is logged once
 *   ("cluster link lost") and its recovery once ("cluster link recovered"), and `up` follows it:
 *   /readyz is 503 while it is false, and nothing is sent meanwhile (counted as dropped by the
 *   cluster, never buffered to burst out later).
 * - `onUp` runs at every (re)connection: the cluster re-announces itself and its interest.
 * - The NATS client is loaded here only, and this module only in cluster mode (server.ts imports
 *   src/cluster dynamically), so a single node never loads it.
 */
import { readFileSync } from 'node:fs';
import {
  connect,
  credsAuthenticator,
  type NatsConnection,
  type NodeConnectionOptions,
} from '@nats-io/transport-node';
import type { Logger } from 'pino';

export interface LinkOptions {
  /** Comma-separated NATS URLs (`--cluster`). */
  readonly servers: string;
  /** `--cluster-creds`, `--cluster-tls-ca` ('' for none). */
  readonly credsFile: string;
  readonly tlsCaFile: string;
  readonly nodeName: string;
  readonly logger: Logger;
  /** Runs at every (re)connection, with the connection. */
  readonly onUp: (nc: NatsConnection) => void;
  /** Runs when the link goes down. */
  readonly onDown: () => void;
}

const RETRY_MS = 1000;

export class NatsLink {
  readonly #options: LinkOptions;
  #nc: NatsConnection | undefined;
  #up = false;
  #closing = false;
  #retry: NodeJS.Timeout | undefined;
  /** Times the link went down after being up (a metric). */
  losses = 0;

  constructor(options: LinkOptions) {
    this.#options = options;
  }

  /** True while connected to a NATS server. */
  get up(): boolean {
    return this.#up;
  }

  /** The connection while up (undefined before the first connection and while down). */
  get connection(): NatsConnection | undefined {
    return this.#up ? this.#nc : undefined;
  }

  /** The NATS servers of the cluster the link is connected to (its INFO's `connect_urls`); 1 alone. */
  get serverCount(): number {
    return this.#nc?.info?.connect_urls?.length ?? 1;
  }

  /** Starts connecting; returns at once (the first attempt's outcome is logged). */
  start(): void {
    void this.#connect(true);
  }

  #connectOptions(): NodeConnectionOptions {
    const o = this.#options;
    const options: NodeConnectionOptions = {
      servers: o.servers.split(',').map((s) => s.trim()),
      name: `pubsub ${o.nodeName}`,
      noEcho: true, // a node never gets back what it sent itself
      maxReconnectAttempts: -1,
      reconnectTimeWait: RETRY_MS,
      pingInterval: 5000,
      maxPingOut: 2,
    };
    if (o.credsFile !== '') options.authenticator = credsAuthenticator(readFileSync(o.credsFile));
    if (o.tlsCaFile !== '') options.tls = { caFile: o.tlsCaFile };
    return options;
  }

  async #connect(first: boolean): Promise<void> {
    const log = this.#options.logger;
    let warned = !first;
    while (!this.#closing) {
      try {
        const nc = await connect(this.#connectOptions());
        if (this.#closing) {
          await nc.close();
          return;
        }
        this.#nc = nc;
        this.#up = true;
        log.info({ event: 'cluster_link_up', server: nc.getServer() }, 'cluster link up');
        this.#options.onUp(nc);
        void this.#watch(nc);
        return;
      } catch (err) {
        if (!warned) {
          warned = true;
          log.warn(
            { event: 'cluster_unreachable', servers: this.#options.servers, err: (err as Error).message },
            `NATS unreachable at ${this.#options.servers}: retrying every ${RETRY_MS / 1000} s until it answers`,
          );
        }
        await new Promise<void>((resolve) => {
          this.#retry = setTimeout(resolve, RETRY_MS);
        });
      }
    }
  }

  async #watch(nc: NatsConnection): Promise<void> {
    const log = this.#options.logger;
    for await (const s of nc.status()) {
      if (s.type === 'disconnect' && this.#up) {
        this.#up = false;
        this.losses++;
        log.warn({ event: 'cluster_link_lost', server: s.server }, 'cluster link lost: reconnecting');
        this.#options.onDown();
      } else if (s.type === 'reconnect' && !this.#up) {
        this.#up = true;
        log.info({ event: 'cluster_link_recovered', server: s.server }, 'cluster link recovered');
        this.#options.onUp(nc);
      }
    }
    // The status stream ends when the connection closes: by us, or (it never gives up) not.
    if (this.#up) {
      this.#up = false;
      this.losses++;
      this.#options.onDown();
    }
    if (!this.#closing) void this.#connect(false);
  }

  /** Closes the link (server shutdown), after sending what is buffered. */
  async close(): Promise<void> {
    this.#closing = true;
    clearTimeout(this.#retry);
    const nc = this.#nc;
    this.#up = false;
    if (nc !== undefined && !nc.isClosed()) {
      await nc.flush().catch(() => undefined);
      await nc.close();
    }
  }
}
