/**
 * Namespaces: `/client/v4/accounts/{account_id}/pubsub/namespaces[/{namespace}]`. Names are
 * case-insensitive DNS labels, unique server-wide. Deleting a namespace that still has brokers
 * is refused (409, code 14004) unless `?cascade=true`, which deletes its brokers first and
 * disconnects their clients (0x98). A token limited to namespaces (or brokers) lists and
 * creates only those.
 */
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../../errors.ts';
import { mayUseNamespace } from '../../tenancy/index.ts';
import { requireToken } from '../access.ts';
import type { ApiContext } from '../context.ts';
import { ok, okList } from '../envelope.ts';
import { presentNamespace } from '../present.ts';
import { EVERYTHING, pageOf, pageSlice } from '../query.ts';
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
      const token = requireToken(req);
      if (token.namespaces === null && token.brokers === null) {
        const { items, total } = t.listNamespaces(account_id, { page, perPage });
        return okList(items.map(presentNamespace), total, page, perPage);
      }
      const all = t
        .listNamespaces(account_id, EVERYTHING)
        .items.filter((n) => mayUseNamespace(token, n.name));
      return okList(pageSlice(all, page, perPage).map(presentNamespace), all.length, page, perPage);
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
      if (!mayUseNamespace(requireToken(req), String(body.name)))
        throw new ApiError('PERMISSION_DENIED', `this API token is not limited to a namespace ${body.name}`);
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
