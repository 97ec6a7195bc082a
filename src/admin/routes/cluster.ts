/**
 * GET /cluster: the nodes of this node's cluster as it knows them (docs/cluster.md): this node
 * first (its own link to NATS), then every peer heard from in the last seconds, each with name,
 * start and uptime, MQTT connections, admin API address, link state and how many filters its
 * sessions subscribe to. Nodes announce themselves every 2 s on NATS; a peer silent for 6 s
 * is gone. On a single node (no `--cluster`) `enabled` is false and `nodes` is empty.
 * Operator only: it describes the whole process, not one account.
 */
import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.ts';
import { ok } from '../envelope.ts';
import { envelope, errorEnvelope } from '../schemas.ts';

const optional = (type: string) => ({ type: [type, 'null'] });

const node = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    self: { type: 'boolean' },
    startedAt: optional('string'),
    uptimeSeconds: optional('integer'),
    connections: optional('integer'),
    apiUrl: optional('string'),
    link: { type: 'string', enum: ['up', 'down'] },
    filters: { type: 'integer' },
    lastSeenMs: { type: 'integer' },
  },
};

const clusterStatus = {
  type: 'object',
  properties: {
    enabled: { type: 'boolean' },
    node: { type: 'string' },
    nodes: { type: 'array', items: node },
  },
};

export function clusterRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get(
    '/cluster',
    {
      schema: {
        summary: 'The nodes of the cluster: name, uptime, connections, link state (operator)',
        tags: ['cluster'],
        response: { 200: envelope(clusterStatus), '4xx': errorEnvelope },
      },
    },
    async () => {
      const cluster = ctx.cluster;
      return ok({
        enabled: cluster !== undefined,
        node: ctx.nodeName,
        nodes: (cluster?.nodes() ?? []).map((n) => ({
          ...n,
          startedAt: n.startedAt ?? null,
          uptimeSeconds: n.uptimeSeconds ?? null,
          connections: n.connections ?? null,
          apiUrl: n.apiUrl ?? null,
        })),
      });
    },
  );
}
