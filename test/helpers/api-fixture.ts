/**
 * An admin API over its own in-memory tenancy, driven through fastify's inject (no listener).
 * Webhook host names resolve through `resolveHost` (test/helpers/hosts.ts), never DNS.
 */
import type { DatabaseSync } from 'node:sqlite';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { buildApi } from '../../src/admin/index.ts';
import { configWith } from '../../src/config.ts';
import type { HostResolver } from '../../src/hooks/index.ts';
import { silentLogger } from '../../src/observability/index.ts';
import { AuditStore, openDatabase, tenancyStores } from '../../src/store/index.ts';
import { Tenancy } from '../../src/tenancy/index.ts';
import { testHosts } from './hosts.ts';

export interface ApiFixture {
  app: FastifyInstance;
  tenancy: Tenancy;
  db: DatabaseSync;
  /** The bootstrap admin token and its account. */
  token: string;
  accountId: string;
  close(): Promise<void>;
}

export async function apiFixture(
  overrides: Record<string, unknown> = {},
  { resolveHost = testHosts, logger = silentLogger() }: { resolveHost?: HostResolver; logger?: Logger } = {},
): Promise<ApiFixture> {
  const config = configWith({ dataDir: ':memory:', ...overrides });
  const db = openDatabase(':memory:');
  const tenancy = new Tenancy(tenancyStores(db), config, logger, undefined, undefined, resolveHost);
  const boot = tenancy.bootstrap();
  const app = await buildApi({
    tenancy,
    config,
    logger: silentLogger(),
    nodeName: 'test-node',
    audit: new AuditStore(db),
    ports: () => ({ mqtt: 1883, ws: 8083, mqtts: 8883 }),
    readiness: () => ({ listeners: true, store: true }),
    eventLoopStallMs: () => 0,
  });
  return {
    app,
    tenancy,
    db,
    token: boot.adminToken!,
    accountId: boot.account.id,
    close: async () => {
      await app.close();
      tenancy.close();
      db.close();
    },
  };
}
