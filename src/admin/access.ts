/**
 * Who may call which admin route: deny by default.
 *
 * The decision is made on the route the router matched (`req.routeOptions.url`, the pattern
 * find-my-way chose from the decoded path), never on the raw URL: `/%63lient/v4/...` matches
 * the same route as `/client/v4/...` and so needs the same token. Only the routes in
 * PUBLIC_ROUTES answer without a token; every other route, and every path that matches no
 * route, needs one (an unknown path answers 403 before 404, so routes cannot be probed).
 *
 * Invariants:
 * - `requireToken` is the only way a handler reads the caller: it throws when no token is
 *   attached, so a route that somehow skipped authentication fails closed.
 * - A path the router could read two ways is refused with 400 once authenticated: an encoded
 *   slash or backslash, a `.` or `..` segment (plain or encoded), doubled slashes, an encoded
 *   NUL. Nothing is normalised by hand. An absolute-form target is judged on its path. A path
 *   the router cannot read at all (bad percent-encoding) never gets here: api.ts answers it.
 * - The account in the path must be the token's account (404 code 7003 when it is not an
 *   account id at all, 403 code 9109 when it is another account's).
 */
import type { FastifyRequest } from 'fastify';
import { ApiError } from '../errors.ts';
import type { ApiTokenRecord } from '../store/index.ts';
import type { Tenancy } from '../tenancy/tenancy.ts';

/** `METHOD pattern` of every route that needs no token. Adding one is a security decision. */
export const PUBLIC_ROUTES: ReadonlySet<string> = new Set([
  'GET /healthz',
  'HEAD /healthz',
  'GET /livez',
  'HEAD /livez',
  'GET /readyz',
  'HEAD /readyz',
  'GET /openapi.json',
  'HEAD /openapi.json',
  // Prometheus scrapes without an admin token; --metrics-token guards it (routes/metrics.ts).
  'GET /metrics',
  'HEAD /metrics',
]);

const ACCOUNT_ID = /^[0-9a-f]{32}$/;

/** The `scheme://authority` of an absolute-form request target (RFC 9112 section 3.2.2). */
const ABSOLUTE_FORM = /^[a-z][a-z0-9+.-]*:\/\/[^/]*/i;

/** `%2F` `%5C` (encoded separators), `%00`, and `.`/`..` segments, plain or encoded. */
const AMBIGUOUS_PATH = /%2f|%5c|%00|\\|\/\/|(?:^|\/)(?:\.|%2e){1,2}(?:\/|$)/i;

/** True when the matched route (undefined: no route matched) is open to anyone. */
export function isPublicRoute(method: string, routeUrl: string | undefined): boolean {
  return routeUrl !== undefined && PUBLIC_ROUTES.has(`${method} ${routeUrl}`);
}

/**
 * The onRequest step: authenticates every non-public request, then refuses ambiguous paths
 * and paths naming an account the token may not use. Sets `req.apiToken`.
 */
export function checkAccess(tenancy: Tenancy, req: FastifyRequest): void {
  if (isPublicRoute(req.method, req.routeOptions.url)) return;
  req.apiToken = authenticate(tenancy, req);
  const path = rawPath(req.url);
  if (AMBIGUOUS_PATH.test(path))
    throw new ApiError(
      'AMBIGUOUS_PATH',
      'request path has an encoded slash, a dot segment or doubled slashes; send the plain path',
    );
  const accountId = (req.params as { account_id?: string } | undefined)?.account_id;
  if (accountId === undefined) return;
  if (!ACCOUNT_ID.test(accountId))
    throw new ApiError('ACCOUNT_NOT_FOUND', `could not route to account ${accountId}: identifier invalid`);
  if (accountId !== req.apiToken.accountId)
    throw new ApiError('ACCOUNT_FORBIDDEN', `this token is not authorized for account ${accountId}`);
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
