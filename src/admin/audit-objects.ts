/**
 * What the audit log says about the object of each admin route family: its type, the action
 * word of each method, how to read the object as it stands before a change, and what of the
 * response is its new value. One table, keyed by route pattern, so that routes carry no audit
 * code of their own (src/admin/audit.ts applies it around every change).
 *
 * Invariants:
 * - A route missing from the table is still audited (every non-GET/HEAD request is): its type
 *   is the last literal segment of its pattern, its id the last path parameter, its old value
 *   null and its new value the response result.
 * - A GET is audited only when its family names an action for GET: `GET .../credentials` mints
 *   tokens (Cloudflare's design), so it is a change.
 * - Readers use only the tenancy facade's getters and present objects as the API does, so an
 *   old value and a new value of the same object compare field by field. A reader that fails
 *   (the object does not exist) gives no old value; the route answers the error.
 * - Values pass through src/admin/redact.ts before they are stored or logged; the function
 *   source of a hook deployment is never read (its version, hash and size are the value).
 */
import type { ApiContext } from './context.ts';
import { presentApiToken, presentBroker, presentNamespace } from './present.ts';

type Params = Record<string, string>;
type Query = Record<string, unknown>;

export interface AuditObject {
  /** `resource.type` of the entries. */
  readonly type: string;
  /** Action words where the method's default (POST create, PUT/PATCH update, DELETE delete) is not the word. */
  readonly actions?: Readonly<Record<string, string>>;
  /** Methods before which `read` runs (default PATCH, PUT, DELETE). */
  readonly readBefore?: readonly string[];
  /** The object as it stands now, as the API presents it. */
  read?(ctx: ApiContext, p: Params): unknown;
  /** The new value from the response's `result` (default: the result as it is). */
  after?(result: unknown): unknown;
  /** The object's id (default: the last path parameter, else the result's `name` or `id`). */
  id?(p: Params, query: Query, result: unknown): string | null;
}

const DEFAULT_ACTIONS: Readonly<Record<string, string>> = {
  POST: 'create',
  PUT: 'update',
  PATCH: 'update',
  DELETE: 'delete',
};

const ACCOUNT = '/client/v4/accounts/:account_id';
const NAMESPACES = `${ACCOUNT}/pubsub/namespaces`;
const BROKERS = `${NAMESPACES}/:namespace/brokers`;
const BROKER = `${BROKERS}/:broker`;

const fromQuery =
  (name: string) =>
  (_p: Params, query: Query): string | null => {
    const v = query[name];
    return v === undefined ? null : [v].flat().join(',');
  };

/** Claims of a JWT's payload that say which token it is, never the token itself. */
function jwtClaims(jwt: unknown): unknown {
  if (typeof jwt !== 'string') return null;
  try {
    const claims = JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<
      string,
      unknown
    >;
    return { jti: claims.jti ?? null, exp: claims.exp ?? null };
  } catch {
    return null;
  }
}

/** A created object's name, from the response result. */
const nameIn = (result: unknown): string | null => {
  const name = (result as { name?: unknown } | null)?.name;
  return typeof name === 'string' ? name : null;
};

const brokerFamily: AuditObject = {
  type: 'broker',
  id: (p, _q, result) => p.broker ?? nameIn(result),
  read: (ctx, p) =>
    presentBroker(
      ctx.tenancy.getBroker(p.account_id!, p.namespace!, p.broker!),
      ctx.config.domain,
      ctx.ports(),
    ),
};

const namespaceFamily: AuditObject = {
  type: 'namespace',
  id: (p, _q, result) => p.namespace ?? nameIn(result),
  read: (ctx, p) => presentNamespace(ctx.tenancy.getNamespace(p.account_id!, p.namespace!)),
};

const tokenFamily: AuditObject = {
  type: 'token',
  read: (ctx, p) => presentApiToken(ctx.tenancy.getApiToken(p.account_id!, p.token_id!)),
  id: (p, _q, result) => p.token_id ?? (result as { id?: string } | null)?.id ?? null,
};

const clientFamily: AuditObject = { type: 'client', actions: { DELETE: 'disconnect' } };
const retainedFamily: AuditObject = { type: 'retained' };

/** The families by route pattern. */
export const AUDIT_OBJECTS: ReadonlyMap<string, AuditObject> = new Map<string, AuditObject>([
  [`${ACCOUNT}/tokens`, tokenFamily],
  [`${ACCOUNT}/tokens/:token_id`, tokenFamily],
  // The new secret is the whole answer: the entry records that it was rolled, never the value.
  [`${ACCOUNT}/tokens/:token_id/value`, { ...tokenFamily, actions: { PUT: 'roll' }, after: () => null }],
  [NAMESPACES, namespaceFamily],
  [`${NAMESPACES}/:namespace`, namespaceFamily],
  [BROKERS, brokerFamily],
  [BROKER, brokerFamily],
  [
    `${BROKER}/credentials`,
    {
      type: 'credentials',
      actions: { GET: 'issue' },
      // client id → the issued token's jti and expiry; the JWT itself is never kept.
      after: (result) =>
        Object.fromEntries(
          Object.entries((result ?? {}) as Record<string, unknown>).map(([clientId, jwt]) => [
            clientId,
            jwtClaims(jwt),
          ]),
        ),
      id: (_p, _q, result) => Object.keys((result ?? {}) as object).join(',') || null,
    },
  ],
  [
    `${BROKER}/revocations`,
    { type: 'revocation', actions: { POST: 'revoke', DELETE: 'unrevoke' }, id: fromQuery('jti') },
  ],
  [
    `${BROKER}/publickeys/rotate`,
    {
      type: 'keys',
      actions: { POST: 'rotate' },
      readBefore: ['POST'],
      read: (ctx, p) => ctx.tenancy.publicKeys(p.account_id!, p.namespace!, p.broker!),
      id: (p) => p.broker ?? null,
    },
  ],
  [
    `${BROKER}/hook/function`,
    {
      type: 'hook_function',
      actions: { PUT: 'deploy' },
      read: (ctx, p) => ctx.tenancy.hookView(p.account_id!, p.namespace!, p.broker!).function,
      id: (p) => p.broker ?? null,
    },
  ],
  [`${BROKER}/clients`, { ...clientFamily, id: fromQuery('client_id') }],
  [`${BROKER}/clients/:client_id`, clientFamily],
  [`${BROKER}/retained`, { ...retainedFamily, id: fromQuery('topic') }],
  [`${BROKER}/retained/:topic`, retainedFamily],
]);

/** The family of a route pattern (a default one for routes the table does not name). */
export function auditObjectOf(route: string): AuditObject {
  const known = AUDIT_OBJECTS.get(route);
  if (known !== undefined) return known;
  const literal = route.split('/').filter((s) => s !== '' && !s.startsWith(':'));
  return { type: literal.at(-1) ?? 'api' };
}

/** Whether a request of this method to this family changes anything (and so is audited). */
export function isChange(method: string, object: AuditObject): boolean {
  if (method === 'GET') return object.actions?.GET !== undefined;
  return method !== 'HEAD' && method !== 'OPTIONS';
}

export function actionOf(method: string, object: AuditObject): string {
  return object.actions?.[method] ?? DEFAULT_ACTIONS[method] ?? method.toLowerCase();
}

/** The object's id: the family's own, else the last path parameter but the account, else the result's name or id. */
export function idOf(object: AuditObject, p: Params, query: Query, result: unknown): string | null {
  if (object.id !== undefined) return object.id(p, query, result);
  const params = Object.entries(p).filter(([name]) => name !== 'account_id');
  if (params.length > 0) return params.at(-1)![1];
  const r = result as { name?: unknown; id?: unknown } | null;
  const named = r?.name ?? r?.id;
  return typeof named === 'string' ? named : null;
}
