/**
 * Starts a Server for a test: loopback, OS-picked ports, no admin API (pass `httpPort: 0` for
 * one), no data directory, silent logs unless PUBSUB_TEST_LOG names a level. `close` is idempotent; use it in `after`/`t.after`.
 */
import type { OptionKey } from '../../src/config.ts';
import { configWith } from '../../src/config.ts';
import { createLogger } from '../../src/observability/index.ts';
import { Server } from '../../src/server.ts';

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
  close(): Promise<void>;
}

export async function startServer(overrides: Partial<Record<OptionKey, unknown>> = {}): Promise<TestServer> {
  const config = configWith({
    host: '127.0.0.1',
    port: 0,
    wsPort: 0,
    httpPort: -1,
    dataDir: ':memory:',
    ...overrides,
  });
  const level = process.env.PUBSUB_TEST_LOG;
  const server = new Server(config, level ? { logger: createLogger(level) } : {});
  await server.start();
  const tcp = server.listeners.find((l) => l.name === 'mqtt')!;
  const ws = server.listeners.find((l) => l.name === 'ws');
  return {
    server,
    port: tcp.port,
    url: tcp.url,
    wsUrl: ws?.url ?? '',
    apiUrl: server.apiUrl ?? '',
    adminToken: server.bootstrap.adminToken ?? '',
    accountId: server.bootstrap.account.id,
    close: () => server.close(),
  };
}
