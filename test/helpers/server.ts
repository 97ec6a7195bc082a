/**
 * Starts a Server for a test: loopback, OS-picked ports, no admin API (pass `httpPort: 0` for
 * one), no data directory, silent logs unless PUBSUB_TEST_LOG names a level (or a logger is
 * passed), webhook host names answered by `testHosts` (never DNS) unless a resolver is passed. TLS stays off unless the test configures a certificate; then its listeners take
 * OS-picked ports too (tlsUrl, wssUrl). `close` is idempotent; use it in `after`/`t.after`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { OptionKey } from '../../src/config.ts';
import { configWith } from '../../src/config.ts';
import { createLogger } from '../../src/observability/index.ts';
import { Server, type ServerOptions } from '../../src/server.ts';
import { testHosts } from './hosts.ts';

export interface TestServer {
  server: Server;
  port: number;
  url: string;
  /** ws:// URL of the WebSocket listener (path /mqtt). */
  wsUrl: string;
  /** Base URL of the admin API (`http://127.0.0.1:port`), when started with httpPort 0. */
  apiUrl: string;
  /** The bootstrap admin token and account id. */
  adminToken: string;
  accountId: string;
  /** mqtts:// URL of the TLS listener, '' when TLS is off. */
  tlsUrl: string;
  /** wss:// URL of the secure WebSocket listener (path /mqtt), '' when TLS is off. */
  wssUrl: string;
  close(): Promise<void>;
}

/** The Cloudflare envelope of an admin API response. */
export interface Envelope<T = unknown> {
  success: boolean;
  result: T;
  errors: { code: number; message: string }[];
  messages: unknown[];
}

/**
 * A call to the test server's admin API under `/client/v4/accounts/{account}/pubsub`, with the
 * bootstrap token; resolves with the envelope (whatever its status).
 */
export async function pubsubApi<T = unknown>(
  ts: TestServer,
  method: string,
  path: string,
  body?: unknown,
): Promise<Envelope<T>> {
  const res = await fetch(`${ts.apiUrl}/client/v4/accounts/${ts.accountId}/pubsub${path}`, {
    method,
    headers: {
      authorization: `Bearer ${ts.adminToken}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return (await res.json()) as Envelope<T>;
}

/**
 * Creates anonymous (authType NONE) brokers `<broker>.<namespace>` on a test server, so that
 * connections naming them by SNI or Host are admitted.
 */
export function addAnonymousBrokers(ts: TestServer, namespace: string, brokers: string[]): void {
  const { tenancy } = ts.server;
  tenancy.createNamespace(ts.accountId, { name: namespace });
  for (const name of brokers) tenancy.createBroker(ts.accountId, namespace, { name, authType: 'NONE' });
}

export async function startServer(
  overrides: Partial<Record<OptionKey, unknown>> = {},
  options: ServerOptions = {},
): Promise<TestServer> {
  const config = configWith({
    host: '127.0.0.1',
    port: 0,
    wsPort: 0,
    httpPort: -1,
    tlsPort: 0,
    wssPort: 0,
    dataDir: ':memory:',
    ...overrides,
  });
  const level = process.env.PUBSUB_TEST_LOG;
  const logger = options.logger ?? (level ? createLogger(level) : undefined);
  const server = new Server(config, {
    ...options,
    ...(logger === undefined ? {} : { logger }),
    resolveHost: options.resolveHost ?? testHosts,
  });
  await server.start();
  const tcp = server.listeners.find((l) => l.name === 'mqtt')!;
  const url = (name: string): string => server.listeners.find((l) => l.name === name)?.url ?? '';
  return {
    server,
    port: tcp.port,
    url: tcp.url,
    wsUrl: url('ws'),
    tlsUrl: url('tls'),
    wssUrl: url('wss'),
    apiUrl: server.apiUrl ?? '',
    // A restart on the same data dir creates no token: the first start's is in admin-token.
    adminToken:
      server.bootstrap.adminToken ??
      (config.dataDir === ':memory:' ? '' : readFileSync(join(config.dataDir, 'admin-token'), 'utf8').trim()),
    accountId: server.bootstrap.account.id,
    close: () => server.close(),
  };
}
