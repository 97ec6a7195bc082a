/**
 * Namespaces: `/client/v4/accounts/{account_id}/pubsub/namespaces[/{namespace}]`. Names are
 * case-insensitive DNS labels, unique server-wide. Deleting a namespace that still has brokers
 * is refused (409, code 14004) unless `?cascade=true`, which deletes its brokers first and
 * disconnects their clients (0x98).
 */
import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.ts';
import { ok, okList } from '../envelope.ts';
import { presentNamespace } from '../present.ts';
import { pageOf } from '../query.ts';
import {
  accountParams,
  createNamespaceBody,
  deleteNamespaceQuery,
  envelope,
  errorEnvelope,
  namespace,
  namespaceParams,
  paging,
} from '../schemas.ts';

const BASE = '/client/v4/accounts/:account_id/pubsub/namespaces';

export function namespaceRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const t = ctx.tenancy;

  app.get(
    BASE,
    {
      schema: {
        summary: 'List namespaces',
        tags: ['namespaces'],
        params: accountParams,
        querystring: paging,
        response: { 200: envelope({ type: 'array', items: namespace }, true), '4xx': errorEnvelope },
      },
    },
    async (req) => {
      const { account_id } = req.params as { account_id: string };
      const { page, perPage } = pageOf(req.query);
      const { items, total } = t.listNamespaces(account_id, { page, perPage });
      return okList(items.map(presentNamespace), total, page, perPage);
    },
  );

  app.post(
    BASE,
    {
      schema: {
        summary: 'Create a namespace',
        tags: ['namespaces'],
        params: accountParams,
        body: createNamespaceBody,
        response: { 200: envelope(namespace), '4xx': errorEnvelope },
      },
    },
    async (req) => {
      const { account_id } = req.params as { account_id: string };
      const body = req.body as { name: string; description?: string };
      return ok(presentNamespace(t.createNamespace(account_id, body)));
    },
  );

  app.get(
    `${BASE}/:namespace`,
    {
      schema: {
        summary: 'Describe a namespace',
        tags: ['namespaces'],
        params: namespaceParams,
        response: { 200: envelope(namespace), '4xx': errorEnvelope },
      },
    },
    async (req) => {
      const { account_id, namespace: name } = req.params as { account_id: string; namespace: string };
      return ok(presentNamespace(t.getNamespace(account_id, name)));
    },
  );

  app.delete(
    `${BASE}/:namespace`,
    {
      schema: {
        summary: 'Delete a namespace (with brokers: only with cascade=true)',
        tags: ['namespaces'],
        params: namespaceParams,
        querystring: deleteNamespaceQuery,
        response: { 200: envelope({ type: 'null' }), '4xx': errorEnvelope },
      },
    },
    async (req) => {
      const { account_id, namespace: name } = req.params as { account_id: string; namespace: string };
      const { cascade } = req.query as { cascade?: string };
      t.deleteNamespace(account_id, name, cascade === 'true');
      return ok(null);
    },
  );
}
