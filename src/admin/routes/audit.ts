/**
 * The audit log: `GET /client/v4/accounts/{account_id}/audit_logs`, Cloudflare's route and
 * entry shape (`id`, `when`, `action {type, result, info}`, `actor {id, type, name, ip}`,
 * `interface`, `owner {id}`, `resource {type, id}`, `oldValue`/`newValue` as JSON text and
 * `oldValueJson`/`newValueJson` as objects, `metadata` with the request's details), paged with
 * `page`/`per_page` and a counted `result_info`. Filters, Cloudflare's names where it has one:
 * `since`, `before` (RFC 3339 or a UTC date), `direction` (desc, the default, or asc),
 * `action.type`, `actor.id` (the API token id), `actor.ip`, `resource.type`, `zone.name`
 * (`<namespace>` or `<broker>.<namespace>`: the object's place, as a broker's host name names
 * it) and ours, `method`.
 * A token reads its own account's entries only (access.ts: the path's account is the token's);
 * entries older than --audit-retention are never returned, pruned yet or not.
 */
import type { FastifyInstance } from 'fastify';
import { auditRetentionMs } from '../../config.ts';
import { ApiError } from '../../errors.ts';
import type { AuditQuery, AuditRecord } from '../../store/index.ts';
import type { ApiContext } from '../context.ts';
import { okList } from '../envelope.ts';
import { pageOf } from '../query.ts';
import { accountParams, envelope, errorEnvelope, paging } from '../schemas.ts';

const TIME = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2}))?$/i;

const text = { type: 'string', maxLength: 256 } as const;

const auditQuery = {
  type: 'object',
  properties: {
    ...paging.properties,
    since: { ...text, description: 'entries at or after this time (RFC 3339, or a date: UTC midnight)' },
    before: { ...text, description: 'entries before this time (RFC 3339, or a date)' },
    direction: {
      type: 'string',
      enum: ['desc', 'asc'],
      description: 'newest first (default) or oldest first',
    },
    'action.type': {
      ...text,
      description: 'create, update, delete, issue, revoke, unrevoke, rotate, deploy, disconnect',
    },
    'actor.id': { ...text, description: 'the API token id that made the change' },
    'actor.ip': { ...text, description: 'the client address it came from' },
    'resource.type': {
      ...text,
      description: 'namespace, broker, token, credentials, revocation, keys, hook_function, client, retained',
    },
    'zone.name': { ...text, description: '<namespace> or <broker>.<namespace>' },
    method: { type: 'string', enum: ['POST', 'PUT', 'PATCH', 'DELETE', 'GET'] },
  },
} as const;

const anyValue = {} as const;

const auditEntry = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    when: { type: 'string' },
    action: {
      type: 'object',
      properties: { type: { type: 'string' }, result: { type: 'boolean' }, info: { type: 'string' } },
    },
    actor: {
      type: 'object',
      properties: {
        id: { type: 'string' },
        type: { type: 'string' },
        name: { type: 'string' },
        ip: { type: 'string' },
      },
    },
    interface: { type: 'string' },
    owner: { type: 'object', properties: { id: { type: 'string' } } },
    resource: { type: 'object', properties: { type: { type: 'string' }, id: { type: ['string', 'null'] } } },
    oldValue: { type: ['string', 'null'] },
    newValue: { type: ['string', 'null'] },
    oldValueJson: anyValue,
    newValueJson: anyValue,
    metadata: { type: 'object', additionalProperties: true },
  },
} as const;

function timeOf(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = TIME.test(value) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(ms))
    throw new ApiError(
      'INVALID_PARAMETER',
      `${name} must be an RFC 3339 time or a date (2026-01-31), got ${value}`,
    );
  return ms;
}

const json = (value: unknown): string | null => (value === null ? null : JSON.stringify(value));

/** An entry in Cloudflare's audit-log shape. */
export function presentAudit(e: AuditRecord): Record<string, unknown> {
  return {
    id: e.id,
    when: new Date(e.at).toISOString(),
    action: { type: e.action, result: e.status < 400, info: `${e.method} ${e.route}` },
    actor: { id: e.actorId, type: 'token', name: e.actorName, ip: e.actorIp },
    interface: 'API',
    owner: { id: e.accountId },
    resource: { type: e.resourceType, id: e.resourceId },
    oldValue: json(e.detail.oldValue),
    newValue: json(e.detail.newValue),
    oldValueJson: e.detail.oldValue,
    newValueJson: e.detail.newValue,
    metadata: {
      method: e.method,
      route: e.route,
      path: e.path,
      status: e.status,
      error_code: e.errorCode,
      error_message: e.detail.errorMessage,
      namespace: e.namespace,
      broker: e.broker,
      params: e.detail.params,
      query: e.detail.query,
    },
  };
}

export function auditRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const retention = auditRetentionMs(ctx.config);

  app.get(
    '/client/v4/accounts/:account_id/audit_logs',
    {
      schema: {
        summary: "The account's audit log: every change through the API, newest first",
        tags: ['audit'],
        params: accountParams,
        querystring: auditQuery,
        response: { 200: envelope({ type: 'array', items: auditEntry }, true), '4xx': errorEnvelope },
      },
    },
    async (req) => {
      const { account_id } = req.params as { account_id: string };
      const q = req.query as Record<string, string | undefined>;
      const { page, perPage } = pageOf(req.query);
      const oldest = Date.now() - retention;
      const zone = q['zone.name']?.split('.');
      if (zone !== undefined && (zone.length > 2 || zone.some((label) => label === '')))
        throw new ApiError('INVALID_PARAMETER', 'zone.name must be <namespace> or <broker>.<namespace>');
      const query: AuditQuery = {
        since: Math.max(oldest, timeOf('since', q.since) ?? oldest),
        before: timeOf('before', q.before),
        action: q['action.type'],
        method: q.method,
        actorId: q['actor.id'],
        actorIp: q['actor.ip'],
        resourceType: q['resource.type'],
        namespace: zone?.at(-1),
        broker: zone?.length === 2 ? zone[0] : undefined,
        direction: q.direction === 'asc' ? 'asc' : 'desc',
      };
      const { items, total } = ctx.audit.list(account_id, query, { page, perPage });
      return okList(items.map(presentAudit), total, page, perPage);
    },
  );
}
