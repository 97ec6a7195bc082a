/**
 * The audit log of the admin API: every change made or attempted through it is one entry in
 * the store (src/store/audit-store.ts) and one structured log line (`msg: 'audit'`).
 *
 * What is recorded: every request that matched a route and carried a valid API token, whose
 * method changes something (any but GET, HEAD and OPTIONS; and the GETs the table in
 * audit-objects.ts marks as changes, `GET .../credentials`), whatever its outcome: done (2xx),
 * refused by access after authentication (403 for another account, 400 for an ambiguous path),
 * by validation (400), or by the route (404, 409, ...). Not recorded: requests without a valid
 * token (no actor to name: failed authentications are the brute-force limiter's business) and
 * paths that match no route (nothing was changed or could be).
 *
 * How, with no audit code in the routes (fastify hooks, registered before the routes):
 * 1. onRequest (after access.ts's check passed): the request is a change of the path's account;
 * 2. preHandler: the object's old value is read through its family's reader (PATCH, PUT and
 *    DELETE; audit-objects.ts);
 * 3. preSerialization: the response envelope is kept (the result before the response schema
 *    trims it; the error's code and message);
 * 4. onSend: the entry is written and logged before the response leaves, so a client that sees
 *    the answer can read the entry. A request refused by access never reached step 1: its entry
 *    belongs to the token's own account, never to the account it named.
 * Old values, new values and query strings pass through `redact` (redact.ts) first: no entry
 * and no audit log line holds a secret. A failure to write an entry is logged as an error and
 * does not fail the request (the change is already made).
 *
 * Retention: entries older than --audit-retention are pruned when the API is built and then
 * periodically (the timer is unref'd and cleared when the API closes); reads never return
 * older entries even between prunes (routes/audit.ts).
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { auditRetentionMs } from '../config.ts';
import type { ApiTokenRecord, AuditRecord } from '../store/index.ts';
import { type AuditObject, actionOf, auditObjectOf, idOf, isChange } from './audit-objects.ts';
import type { ApiContext } from './context.ts';
import type { Envelope } from './envelope.ts';
import { redact } from './redact.ts';

const READ_BEFORE = ['PATCH', 'PUT', 'DELETE'];
const MAX_PRUNE_INTERVAL_MS = 3_600_000;

interface Draft {
  object: AuditObject;
  /** The account whose log gets the entry. */
  account: string;
  before: unknown;
  envelope: Envelope | undefined;
}

type Params = Record<string, string>;

/** The audited change a request is, or undefined when it is not one. */
function changeOf(req: FastifyRequest): AuditObject | undefined {
  const route = req.routeOptions.url;
  if (req.apiToken === null || route === undefined) return undefined;
  const object = auditObjectOf(route);
  return isChange(req.method, object) ? object : undefined;
}

/** Registers the audit hooks and the retention timer on the API (before its routes). */
export function auditChanges(app: FastifyInstance, ctx: ApiContext): void {
  const drafts = new WeakMap<FastifyRequest, Draft>();
  const draft = (req: FastifyRequest, object: AuditObject, account: string): Draft => {
    const d: Draft = { object, account, before: null, envelope: undefined };
    drafts.set(req, d);
    return d;
  };

  app.addHook('onRequest', async (req) => {
    const object = changeOf(req);
    if (object === undefined) return;
    const token = req.apiToken as ApiTokenRecord;
    draft(req, object, (req.params as Params | undefined)?.account_id ?? token.accountId);
  });

  app.addHook('preHandler', async (req) => {
    const d = drafts.get(req);
    if (d?.object.read === undefined || !(d.object.readBefore ?? READ_BEFORE).includes(req.method)) return;
    try {
      d.before = d.object.read(ctx, req.params as Params) ?? null;
    } catch {
      d.before = null; // no such object: the route answers the error
    }
  });

  app.addHook('preSerialization', async (req, _reply, payload) => {
    let d = drafts.get(req);
    if (d === undefined) {
      const object = changeOf(req);
      if (object === undefined) return payload;
      d = draft(req, object, (req.apiToken as ApiTokenRecord).accountId);
    }
    d.envelope = payload as Envelope;
    return payload;
  });

  app.addHook('onSend', async (req, reply, payload) => {
    const d = drafts.get(req);
    if (d === undefined) return payload;
    drafts.delete(req);
    try {
      const entry = entryOf(req, reply.statusCode, d);
      ctx.audit.append(entry);
      logEntry(ctx, entry);
    } catch (err) {
      ctx.logger.error({ err, method: req.method, url: req.url }, 'audit: could not record a change');
    }
    return payload;
  });

  const retention = auditRetentionMs(ctx.config);
  const prune = () => {
    const pruned = ctx.audit.prune(Date.now() - retention);
    if (pruned > 0) ctx.logger.debug({ pruned }, 'audit: entries past their retention pruned');
  };
  prune();
  const timer = setInterval(prune, Math.max(1000, Math.min(retention, MAX_PRUNE_INTERVAL_MS))).unref();
  app.addHook('onClose', async () => clearInterval(timer));
}

function entryOf(req: FastifyRequest, status: number, d: Draft): AuditRecord {
  const token = req.apiToken as ApiTokenRecord;
  const params = { ...((req.params ?? {}) as Params) };
  const query = (req.query ?? {}) as Record<string, unknown>;
  const done = status < 400;
  const result = done ? d.envelope?.result : undefined;
  const error = done ? undefined : d.envelope?.errors[0];
  const resourceId = idOf(d.object, params, query, result);
  const { type } = d.object;
  return {
    id: randomUUID(),
    accountId: d.account,
    at: Date.now(),
    actorId: token.id,
    actorName: token.name,
    actorIp: req.clientAddress,
    action: actionOf(req.method, d.object),
    method: req.method,
    route: req.routeOptions.url ?? '',
    path: req.url.split('?')[0]!,
    resourceType: type,
    resourceId,
    namespace: params.namespace ?? (type === 'namespace' ? resourceId : null),
    broker: params.broker ?? (type === 'broker' ? resourceId : null),
    status,
    errorCode: error?.code ?? null,
    detail: {
      params,
      query: Object.keys(query).length === 0 ? null : (redact(query) as Record<string, unknown>),
      oldValue: redact(d.before),
      newValue: done
        ? redact(d.object.after === undefined ? (result ?? null) : d.object.after(result))
        : null,
      errorMessage: error?.message ?? null,
    },
  };
}

/** The entry as one log line: every field, values already redacted. */
function logEntry(ctx: ApiContext, e: AuditRecord): void {
  ctx.logger.info(
    {
      audit_id: e.id,
      account: e.accountId,
      actor: { id: e.actorId, name: e.actorName, ip: e.actorIp },
      action: e.action,
      method: e.method,
      route: e.route,
      path: e.path,
      resource: { type: e.resourceType, id: e.resourceId, namespace: e.namespace, broker: e.broker },
      status: e.status,
      error_code: e.errorCode,
      query: e.detail.query,
      old_value: e.detail.oldValue,
      new_value: e.detail.newValue,
    },
    'audit',
  );
}
