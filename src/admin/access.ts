/**
 * Who may call which admin route: deny by default, by one table (route-permissions.ts).
 *
 * The decision is made on the route the router matched (`req.routeOptions.url`, the pattern
 * find-my-way chose from the decoded path), never on the raw URL: `/%63lient/v4/...` matches
 * the same route as `/client/v4/...` and so needs the same token. Only the table's `public`
 * routes answer without a token; every other route, and every path that matches no route,
 * needs one (an unknown path answers 403 before 404, so routes cannot be probed).
 *
 * Order, each step refusing with a catalogue error: the token (403, 10000: none or unknown);
 * its validity window (403, 10000: expired or not yet valid); its `condition.request_ip`
 * against the client address (client-address.ts; 403, 9109); an ambiguous path (400, 7010);
 * the route's permission (403, 9109; a route missing from the table is refused the same way);
 * then the path's scope: an account, namespace or broker the token may not use is answered
 * exactly as one that does not exist (404: 7003, 14003, 14006), so ids and names never leak.
 *
 * Invariants:
 * - `requireToken` is the only way a handler reads the caller: it throws when no token is
 *   attached, so a route that somehow skipped authentication fails closed.
 * - A path the router could read two ways is refused with 400 once authenticated: an encoded
 *   slash or backslash, a `.` or `..` segment (plain or encoded), doubled slashes, an encoded
 *   NUL. Nothing is normalised by hand. An absolute-form target is judged on its path. A path
 *   the router cannot read at all (bad percent-encoding) never gets here: api.ts answers it.
 * - `req.apiToken` (the token record: `id`, `name`, grant) and `req.routePermission` (what the
 *   route needed) are set for every authenticated request that reached a route, for the
 *   handlers and for whoever records what a request did.
 */
import type { FastifyRequest } from 'fastify';
import { ApiError } from '../errors.ts';
import type { ApiTokenRecord } from '../store/index.ts';
import {
  addressAllowed,
  hasPermission,
  mayUseAccount,
  mayUseBroker,
  mayUseNamespace,
  type Tenancy,
  tokenStatus,
} from '../tenancy/index.ts';
import { ROUTE_PERMISSIONS, routeAccess } from './route-permissions.ts';

/** `METHOD pattern` of every route that needs no token (the table's `public` entries). */
export const PUBLIC_ROUTES: ReadonlySet<string> = new Set(
  Object.entries(ROUTE_PERMISSIONS)
    .filter(([, access]) => access === 'public')
    .map(([route]) => route),
);

const ACCOUNT_ID = /^[0-9a-f]{32}$/;

/** The `scheme://authority` of an absolute-form request target (RFC 9112 section 3.2.2). */
const ABSOLUTE_FORM = /^[a-z][a-z0-9+.-]*:\/\/[^/]*/i;

/** `%2F` `%5C` (encoded separators), `%00`, and `.`/`..` segments, plain or encoded. */
const AMBIGUOUS_PATH = /%2f|%5c|%00|\\|\/\/|(?:^|\/)(?:\.|%2e){1,2}(?:\/|$)/i;

/** True when the matched route (undefined: no route matched) is open to anyone. */
export function isPublicRoute(method: string, routeUrl: string | undefined): boolean {
  return routeUrl !== undefined && routeAccess(method, routeUrl) === 'public';
}

/**
 * The onRequest step: authenticates every non-public request and refuses what its token may
 * not do (see the module comment), judging address conditions on `req.clientAddress`, which
 * api.ts sets first (client-address.ts) because the brute-force limiter counts by it too. Sets
 * `req.apiToken` and `req.routePermission`.
 */
export function checkAccess(tenancy: Tenancy, req: FastifyRequest): void {
  const route = req.routeOptions.url;
  const access = route === undefined ? undefined : routeAccess(req.method, route);
  if (access === 'public') return;
  const token = authenticate(tenancy, req);
  req.apiToken = token;
  const status = tokenStatus(token, Date.now());
  if (status === 'expired') throw new ApiError('TOKEN_INACTIVE', `API token expired on ${token.expiresOn}`);
  if (status === 'disabled')
    throw new ApiError('TOKEN_INACTIVE', `API token not valid before ${token.notBefore}`);
  if (!addressAllowed(token, req.clientAddress)) throw new ApiError('TOKEN_ADDRESS_REFUSED');
  const path = rawPath(req.url);
  if (AMBIGUOUS_PATH.test(path))
    throw new ApiError(
      'AMBIGUOUS_PATH',
      'request path has an encoded slash, a dot segment or doubled slashes; send the plain path',
    );
  if (route === undefined) return; // no route: the not-found handler answers 404
  if (access === undefined)
    throw new ApiError('PERMISSION_DENIED', `${req.method} ${route} is in no permission table entry`);
  req.routePermission = access;
  if (access !== 'token' && !hasPermission(token, access))
    throw new ApiError('PERMISSION_DENIED', `this API token lacks the ${access} permission`);
  checkScope(tenancy, token, req.params as PathParams | undefined);
}

interface PathParams {
  account_id?: string;
  namespace?: string;
  broker?: string;
}

/** Out of the token's scope answers as not found, with the not-found message. */
function checkScope(tenancy: Tenancy, token: ApiTokenRecord, params: PathParams | undefined): void {
  const accountId = params?.account_id;
  if (accountId === undefined) return;
  if (!ACCOUNT_ID.test(accountId))
    throw new ApiError('ACCOUNT_NOT_FOUND', `could not route to account ${accountId}: identifier invalid`);
  if (!mayUseAccount(token, accountId))
    throw new ApiError('ACCOUNT_NOT_FOUND', `could not route to account ${accountId}`);
  tenancy.account(accountId);
  const { namespace, broker } = params!;
  if (namespace !== undefined && !mayUseNamespace(token, namespace))
    throw new ApiError('NAMESPACE_NOT_FOUND', `namespace ${namespace} not found`);
  if (namespace !== undefined && broker !== undefined && !mayUseBroker(token, namespace, broker))
    throw new ApiError(
      'BROKER_NOT_FOUND',
      `broker ${broker} not found in namespace ${namespace.toLowerCase()}`,
    );
}

/** The caller's token; throws (403) when none is attached, so handlers fail closed. */
export function requireToken(req: FastifyRequest): ApiTokenRecord {
  if (req.apiToken === null) throw new ApiError('AUTHENTICATION_ERROR', 'this route needs an API token');
  return req.apiToken;
}

/** The path of a request target, origin-form or absolute-form (RFC 9112 section 3.2.2). */
function rawPath(url: string): string {
  const query = url.indexOf('?');
  const target = query === -1 ? url : url.slice(0, query);
  const authority = ABSOLUTE_FORM.exec(target);
  return authority === null ? target : target.slice(authority[0].length);
}

/** The token a request carries; throws (403, code 10000) when it has none or a wrong one. */
export function authenticate(tenancy: Tenancy, req: FastifyRequest): ApiTokenRecord {
  const authorization = req.headers.authorization;
  let secret: string | undefined;
  if (typeof authorization === 'string') {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (match === null)
      throw new ApiError('AUTHENTICATION_ERROR', 'Authorization header must be "Bearer <API token>"');
    secret = match[1];
  } else {
    const key = req.headers['x-auth-key'];
    const email = req.headers['x-auth-email'];
    if (typeof key === 'string' && key !== '') {
      if (typeof email !== 'string' || email === '')
        throw new ApiError('AUTHENTICATION_ERROR', 'X-Auth-Key needs X-Auth-Email beside it');
      secret = key.trim();
    }
  }
  if (secret === undefined)
    throw new ApiError(
      'AUTHENTICATION_ERROR',
      'missing credentials: send Authorization: Bearer <API token> (see <data-dir>/admin-token)',
    );
  const token = tenancy.verifyApiToken(secret);
  if (token === undefined) throw new ApiError('AUTHENTICATION_ERROR', 'invalid API token');
  return token;
}
