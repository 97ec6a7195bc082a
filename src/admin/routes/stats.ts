/**
 * `GET /client/v4/accounts/{account_id}/pubsub/stats` (ours; the console's Overview polls it):
 * each broker's figures now, read from its counters (`BrokerStats`, the hook's stats) exactly
 * as `GET /metrics` reads them, but under the admin token's permission and scope: only the
 * account's brokers the token may use. Counters are totals since the server started (or the
 * broker was created); a reader takes rates from two answers and their `time`.
 */
import type { FastifyInstance } from 'fastify';
import { mayUseBroker, type Tenant } from '../../tenancy/index.ts';
import { requireToken } from '../access.ts';
import type { ApiContext } from '../context.ts';
import { DROPS } from '../drop-reasons.ts';
import { ok } from '../envelope.ts';
import { EVERYTHING } from '../query.ts';
import { accountParams, envelope, errorEnvelope } from '../schemas.ts';

const count = { type: 'integer', minimum: 0 } as const;
const brokerStats = {
  type: 'object',
  properties: {
    namespace: { type: 'string' },
    broker: { type: 'string' },
    connections: count,
    messages_received: count,
    messages_sent: count,
    messages_dropped: count,
    bytes_received: count,
    bytes_sent: count,
  },
} as const;
const stats = {
  type: 'object',
  properties: {
    time: { type: 'string', format: 'date-time' },
    brokers: { type: 'array', items: brokerStats },
  },
} as const;

const sum = (values: Iterable<number>): number => {
  let total = 0;
  for (const value of values) total += value;
  return total;
};

function present(tenant: Tenant): Record<string, unknown> {
  const s = tenant.broker.stats;
  const hook = tenant.hooks.pipeline.stats;
  return {
    namespace: tenant.record.namespaceName,
    broker: tenant.record.name,
    connections: sum(Object.values(s.connections)),
    messages_received: sum(s.received),
    messages_sent: sum(s.sent),
    // The same drops as pubsub_messages_dropped_total (docs/observability.md), all reasons.
    messages_dropped:
      sum(Object.values(DROPS).map((field) => s[field])) + hook.dropped + hook.invalid + hook.failedDropped,
    bytes_received: s.bytesReceived,
    bytes_sent: s.bytesSent,
  };
}

export function statsRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get(
    '/client/v4/accounts/:account_id/pubsub/stats',
    {
      schema: {
        summary: "Each broker's connections, messages and bytes now (counters since start)",
        tags: ['brokers'],
        params: accountParams,
        response: { 200: envelope(stats), '4xx': errorEnvelope },
      },
    },
    async (req) => {
      const { account_id } = req.params as { account_id: string };
      const token = requireToken(req);
      const namespaces = new Set(ctx.tenancy.listNamespaces(account_id, EVERYTHING).items.map((n) => n.name));
      const brokers: Record<string, unknown>[] = [];
      for (const tenant of ctx.tenancy.tenants()) {
        const { namespaceName, name } = tenant.record;
        if (namespaces.has(namespaceName) && mayUseBroker(token, namespaceName, name))
          brokers.push(present(tenant));
      }
      return ok({ time: new Date().toISOString(), brokers });
    },
  );
}
