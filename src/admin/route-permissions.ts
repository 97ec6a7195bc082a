/**
 * The one table of what each admin route needs, by `METHOD pattern` (the route fastify matched,
 * never the raw URL): `public` (no token), `token` (any valid token: discovering its own
 * accounts, verifying itself), or a permission (src/tenancy/token-scope.ts; `pubsub:edit`
 * includes `pubsub:read`, `operator` includes everything).
 *
 * Deny by default: a route missing here is refused (403, code 9109) to every token, and
 * test/admin/route-permissions.test.ts fails when a registered route is missing. A HEAD route
 * (fastify adds one per GET) needs what its GET needs. Adding a `public` route is a security
 * decision. Every route that changes something needs an edit permission, even a GET that mints
 * (`.../credentials`).
 */
import type { Permission } from '../tenancy/index.ts';
import { CONSOLE_PATHS } from './routes/console.ts';

export type RouteAccess = 'public' | 'token' | Permission;

const ACCOUNT = '/client/v4/accounts/:account_id';
const NS = `${ACCOUNT}/pubsub/namespaces`;
const BROKER = `${NS}/:namespace/brokers/:broker`;

export const ROUTE_PERMISSIONS: Readonly<Record<string, RouteAccess>> = {
  'GET /healthz': 'public',
  'HEAD /healthz': 'public',
  'GET /livez': 'public',
  'HEAD /livez': 'public',
  'GET /readyz': 'public',
  'HEAD /readyz': 'public',
  'GET /openapi.json': 'public',
  'HEAD /openapi.json': 'public',
  // Prometheus scrapes without an admin token; --metrics-token guards it (routes/metrics.ts).
  'GET /metrics': 'public',
  'HEAD /metrics': 'public',
  // The web console's static files and page addresses (routes/console.ts): no secret in them;
  // the console calls the routes below with the admin token like any client.
  ...Object.fromEntries(
    CONSOLE_PATHS.flatMap((path): [string, RouteAccess][] => [
      [`GET ${path}`, 'public'],
      [`HEAD ${path}`, 'public'],
    ]),
  ),

  // The cluster's nodes (names, addresses, connections): the whole process's, no account's.
  'GET /cluster': 'operator',
  'HEAD /cluster': 'operator',

  'GET /client/v4/user/tokens/verify': 'token',
  [`GET ${ACCOUNT}/tokens/verify`]: 'token',
  'GET /client/v4/accounts': 'token',
  [`GET ${ACCOUNT}`]: 'token',
  'POST /client/v4/accounts': 'operator',
  [`PATCH ${ACCOUNT}`]: 'operator',
  [`PUT ${ACCOUNT}`]: 'operator',
  // Who changed what, with their token names and addresses: for those who manage the tokens.
  [`GET ${ACCOUNT}/audit_logs`]: 'tokens:edit',
  [`DELETE ${ACCOUNT}`]: 'operator',

  [`GET ${ACCOUNT}/tokens`]: 'tokens:edit',
  [`POST ${ACCOUNT}/tokens`]: 'tokens:edit',
  [`GET ${ACCOUNT}/tokens/:token_id`]: 'tokens:edit',
  [`PUT ${ACCOUNT}/tokens/:token_id`]: 'tokens:edit',
  [`PUT ${ACCOUNT}/tokens/:token_id/value`]: 'tokens:edit',
  [`DELETE ${ACCOUNT}/tokens/:token_id`]: 'tokens:edit',

  [`GET ${ACCOUNT}/pubsub/stats`]: 'pubsub:read',
  [`GET ${NS}`]: 'pubsub:read',
  [`POST ${NS}`]: 'pubsub:edit',
  [`GET ${NS}/:namespace`]: 'pubsub:read',
  [`DELETE ${NS}/:namespace`]: 'pubsub:edit',
  [`GET ${NS}/:namespace/brokers`]: 'pubsub:read',
  [`POST ${NS}/:namespace/brokers`]: 'pubsub:edit',
  [`GET ${BROKER}`]: 'pubsub:read',
  [`PATCH ${BROKER}`]: 'pubsub:edit',
  [`DELETE ${BROKER}`]: 'pubsub:edit',
  [`GET ${BROKER}/credentials`]: 'pubsub:edit',
  [`POST ${BROKER}/revocations`]: 'pubsub:edit',
  [`GET ${BROKER}/revocations`]: 'pubsub:read',
  [`DELETE ${BROKER}/revocations`]: 'pubsub:edit',
  [`GET ${BROKER}/publickeys`]: 'pubsub:read',
  [`POST ${BROKER}/publickeys/rotate`]: 'pubsub:edit',
  [`GET ${BROKER}/hook`]: 'pubsub:read',
  [`PUT ${BROKER}/hook/function`]: 'pubsub:edit',
  [`DELETE ${BROKER}/hook/function`]: 'pubsub:edit',
  [`GET ${BROKER}/clients`]: 'pubsub:read',
  [`DELETE ${BROKER}/clients`]: 'pubsub:edit',
  [`GET ${BROKER}/clients/:client_id`]: 'pubsub:read',
  [`GET ${BROKER}/client`]: 'pubsub:read',
  [`DELETE ${BROKER}/clients/:client_id`]: 'pubsub:edit',
  [`GET ${BROKER}/trace`]: 'pubsub:read',
  [`GET ${BROKER}/retained`]: 'pubsub:read',
  [`DELETE ${BROKER}/retained`]: 'pubsub:edit',
  [`DELETE ${BROKER}/retained/:topic`]: 'pubsub:edit',
};

/** What a matched route needs; undefined when it is not in the table (refused). */
export function routeAccess(method: string, routeUrl: string): RouteAccess | undefined {
  return (
    ROUTE_PERMISSIONS[`${method} ${routeUrl}`] ??
    (method === 'HEAD' ? ROUTE_PERMISSIONS[`GET ${routeUrl}`] : undefined)
  );
}
