/**
 * Starts a Server for a test: loopback, an OS-picked port, no data directory, silent logs
 * unless PUBSUB_TEST_LOG names a level. `close` is idempotent; use it in `after`/`t.after`.
 */
import type { OptionKey } from '../../src/config.ts';
import { configWith } from '../../src/config.ts';
import { createLogger } from '../../src/observability/index.ts';
import { Server } from '../../src/server.ts';

export interface TestServer {
  server: Server;
  port: number;
  url: string;
  close(): Promise<void>;
}

export async function startServer(overrides: Partial<Record<OptionKey, unknown>> = {}): Promise<TestServer> {
  const config = configWith({ host: '127.0.0.1', port: 0, dataDir: ':memory:', ...overrides });
  const level = process.env.PUBSUB_TEST_LOG;
  const server = new Server(config, level ? { logger: createLogger(level) } : {});
  await server.start();
  const listener = server.listeners[0]!;
  return { server, port: listener.port, url: listener.url, close: () => server.close() };
}
