/**
 * Brokers: `/client/v4/accounts/{account_id}/pubsub/namespaces/{namespace}/brokers[/{broker}]`.
 * Bodies accept `authType` or `auth_type` (Cloudflare's docs and wrangler disagree), an
 * `expiration` in seconds or null, and `on_publish: {url, policy, timeout_ms}` (a null url clears
 * the webhook; policy and timeout are ours: see docs/hooks.md), `sys_topics` (ours: whether the
 * broker publishes its $SYS tree, docs/observability.md) and `mtls_client_id_pattern`
 * (certificate brokers' CN → client id rule; null or empty: the server's), `limits` (ours: the
 * broker's own limits, each field null for the server's flag; PATCH merges them field by field,
 * docs/limits.md). A URL is checked against the
 * webhook egress policy before anything is stored: its host resolved now and every address
 * decided (400, code 14013, when refused; it is decided again at every connection). PATCH
 * changes only the fields given. DELETE disconnects the broker's clients (v5 DISCONNECT 0x98)
 * and drops its state. A token limited to brokers lists and creates only those.
 */
import type { FastifyInstance } from 'fastify';
import { CertificateClientIds } from '../../auth/index.ts';
import { ApiError } from '../../errors.ts';
import {
  type AuthType,
  BROKER_LIMIT_FIELDS,
  type BrokerPatch,
  type HookFailurePolicy,
  type LimitChanges,
} from '../../store/index.ts';
import { mayUseBroker } from '../../tenancy/index.ts';
import { requireToken } from '../access.ts';
import type { ApiContext } from '../context.ts';
import { ok, okList } from '../envelope.ts';
import { presentBroker } from '../present.ts';
import { EVERYTHING, pageOf, pageSlice } from '../query.ts';
import {
  broker,
  brokerParams,
  createBrokerBody,
  envelope,
  errorEnvelope,
  namespaceParams,
  paging,
  updateBrokerBody,
} from '../schemas.ts';

const BASE = '/client/v4/accounts/:account_id/pubsub/namespaces/:namespace/brokers';

interface BrokerBody {
  name?: string;
  description?: string;
  authType?: AuthType;
  auth_type?: AuthType;
  expiration?: number | null;
  on_publish?: { url?: string | null; policy?: HookFailurePolicy; timeout_ms?: number | null };
  sys_topics?: boolean;
  mtls_client_id_pattern?: string | null;
  limits?: LimitChanges;
}

/** The fields a create or update body sets, validated beyond what the schema can say. */
function patchOf(body: BrokerBody): BrokerPatch {
  const patch: BrokerPatch = {};
  if (body.authType !== undefined && body.auth_type !== undefined && body.authType !== body.auth_type)
    throw new ApiError('INVALID_PARAMETER', 'authType and auth_type disagree');
  const authType = body.authType ?? body.auth_type;
  if (authType !== undefined) patch.authType = authType;
  if (body.description !== undefined) patch.description = body.description;
  if (body.expiration !== undefined) patch.expiration = body.expiration;
  if (body.sys_topics !== undefined) patch.sysTopics = body.sys_topics;
  if (body.limits !== undefined) patch.limits = limitChangesOf(body.limits);
  if (body.on_publish !== undefined && body.on_publish.url !== undefined) {
    const url = body.on_publish.url;
    if (url !== null) {
      let parsed: URL;
      try {
        parsed = new URL(url);
      } catch {
        throw new ApiError('INVALID_PARAMETER', `on_publish.url is not a URL: ${url}`);
      }
      if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:')
        throw new ApiError('INVALID_PARAMETER', 'on_publish.url must be an http(s) URL');
    }
    patch.onPublishUrl = url;
  }
  if (body.on_publish?.policy !== undefined) patch.onPublishPolicy = body.on_publish.policy;
  if (body.on_publish?.timeout_ms !== undefined) patch.onPublishTimeoutMs = body.on_publish.timeout_ms;
  const pattern = body.mtls_client_id_pattern;
  if (pattern !== undefined) {
    const refused = pattern === null ? undefined : CertificateClientIds.check(pattern);
    if (refused !== undefined)
      throw new ApiError(
        'INVALID_PARAMETER',
        `mtls_client_id_pattern is not a regular expression: ${refused}`,
      );
    patch.mtlsClientIdPattern = pattern === '' ? null : pattern;
  }
  return patch;
}

const LIMIT_NAMES: readonly string[] = [...BROKER_LIMIT_FIELDS, 'rate_limit_action'];

/** A body's `limits`, each field typed by the schema; a field that names no limit is refused. */
function limitChangesOf(limits: LimitChanges): LimitChanges {
  const unknown = Object.keys(limits).filter((field) => !LIMIT_NAMES.includes(field));
  if (unknown.length > 0)
    throw new ApiError(
      'INVALID_PARAMETER',
      `limits.${unknown[0]} is not a limit; the limits are ${LIMIT_NAMES.join(', ')} (docs/limits.md)`,
    );
  return limits;
}

export function brokerRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const t = ctx.tenancy;
  const present = (record: Parameters<typeof presentBroker>[0]) =>
    presentBroker(record, ctx.config.domain, ctx.ports());

  app.get(
    BASE,
    {
      schema: {
        summary: 'List the brokers of a namespace',
        tags: ['brokers'],
        params: namespaceParams,
        querystring: paging,
        response: { 200: envelope({ type: 'array', items: broker }, true), '4xx': errorEnvelope },
      },
    },
    async (req) => {
      const { account_id, namespace } = req.params as { account_id: string; namespace: string };
      const { page, perPage } = pageOf(req.query);
      const token = requireToken(req);
      if (token.brokers === null) {
        const { items, total } = t.listBrokers(account_id, namespace, { page, perPage });
        return okList(items.map(present), total, page, perPage);
      }
      const all = t
        .listBrokers(account_id, namespace, EVERYTHING)
        .items.filter((b) => mayUseBroker(token, b.namespaceName, b.name));
      return okList(pageSlice(all, page, perPage).map(present), all.length, page, perPage);
    },
  );

  app.post(
    BASE,
    {
      schema: {
        summary: 'Create a broker',
        tags: ['brokers'],
        params: namespaceParams,
        body: createBrokerBody,
        response: { 200: envelope(broker), '4xx': errorEnvelope },
      },
    },
    async (req) => {
      const { account_id, namespace } = req.params as { account_id: string; namespace: string };
      const body = req.body as BrokerBody;
      if (!mayUseBroker(requireToken(req), namespace, String(body.name)))
        throw new ApiError('PERMISSION_DENIED', `this API token is not limited to a broker ${body.name}`);
      const patch = patchOf(body);
      if (typeof patch.onPublishUrl === 'string') {
        const ns = t.getNamespace(account_id, namespace);
        await t.checkWebhookUrl(patch.onPublishUrl, `${String(body.name)}.${ns.name}`);
      }
      return ok(present(t.createBroker(account_id, namespace, { name: body.name, ...patch })));
    },
  );

  app.get(
    `${BASE}/:broker`,
    {
      schema: {
        summary: 'Describe a broker',
        tags: ['brokers'],
        params: brokerParams,
        response: { 200: envelope(broker), '4xx': errorEnvelope },
      },
    },
    async (req) => {
      const p = req.params as { account_id: string; namespace: string; broker: string };
      return ok(present(t.getBroker(p.account_id, p.namespace, p.broker)));
    },
  );

  app.patch(
    `${BASE}/:broker`,
    {
      schema: {
        summary: 'Update a broker (only the fields given)',
        tags: ['brokers'],
        params: brokerParams,
        body: updateBrokerBody,
        response: { 200: envelope(broker), '4xx': errorEnvelope },
      },
    },
    async (req) => {
      const p = req.params as { account_id: string; namespace: string; broker: string };
      const patch = patchOf((req.body ?? {}) as BrokerBody);
      if (typeof patch.onPublishUrl === 'string') {
        const record = t.getBroker(p.account_id, p.namespace, p.broker);
        await t.checkWebhookUrl(patch.onPublishUrl, `${record.name}.${record.namespaceName}`);
      }
      return ok(present(t.updateBroker(p.account_id, p.namespace, p.broker, patch)));
    },
  );

  app.delete(
    `${BASE}/:broker`,
    {
      schema: {
        summary: 'Delete a broker: its clients are disconnected (0x98) and its state dropped',
        tags: ['brokers'],
        params: brokerParams,
        response: { 200: envelope({ type: 'null' }), '4xx': errorEnvelope },
      },
    },
    async (req) => {
      const p = req.params as { account_id: string; namespace: string; broker: string };
      t.deleteBroker(p.account_id, p.namespace, p.broker);
      return ok(null);
    },
  );
}
