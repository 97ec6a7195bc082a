/**
 * What every admin route is given: the `ApiContext` (tenancy, configuration, logger, listener
 * ports, readiness and liveness) and the request and instance fields the API adds to fastify's types
 * (`req.apiToken`, `req.routePermission`, set by access.ts; `req.clientAddress`, set by api.ts;
 * `app.registeredRoutes`).
 *
 * The route files (routes/*.ts) and api.ts import this module; it imports neither, so the
 * routes never import the module that registers them.
 */
import type { FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Cluster } from '../cluster/index.ts';
import type { Config } from '../config.ts';
import type { LogSampler, OverloadWatch } from '../observability/index.ts';
import type { ConnectionGuard } from '../session/index.ts';
import type { ApiTokenRecord, AuditStore } from '../store/index.ts';
import type { Tenancy } from '../tenancy/tenancy.ts';
import type { PacingFigures } from '../transport/accept-pacer.ts';
import type { ListenerPorts } from './present.ts';
import type { RouteAccess } from './route-permissions.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated token (its `id`, `name` and grant); null on public routes. */
    apiToken: ApiTokenRecord | null;
    /** What the matched route needed (route-permissions.ts); null on public or unmatched routes. */
    routePermission: RouteAccess | null;
    /** The client's address: the socket peer, or behind `--api-trust-proxy` the forwarded one. */
    clientAddress: string;
  }
  interface FastifyInstance {
    /** Every route as registered (method, pattern): what the access tests enumerate. */
    registeredRoutes: readonly RegisteredRoute[];
  }
}

export interface RegisteredRoute {
  readonly method: string;
  readonly url: string;
}

export interface ApiContext {
  readonly tenancy: Tenancy;
  readonly config: Config;
  readonly logger: Logger;
  /** This node's name: the `node` label of every metric. */
  readonly nodeName: string;
  /** Where the audit log is kept (src/admin/audit.ts writes it, routes/audit.ts reads it). */
  readonly audit: AuditStore;
  /** Ports of the running MQTT listeners, for broker endpoints. */
  ports(): ListenerPorts;
  /**
   * The readiness checks by name, true while passing: `listeners` (every listener bound and
   * the server not shutting down), `store` (the message store open and committing).
   */
  readiness(): Readonly<Record<string, boolean>>;
  /** Milliseconds of the event loop's worst recent stall (observability/event-loop-watch.ts). */
  eventLoopStallMs(): number;
  /** Cluster mode: the node's link and peers (GET /cluster, cluster metrics); absent on a single node. */
  readonly cluster?: Cluster | undefined;
  /** The process's own protections, for /metrics (absent: their series are not served). */
  readonly protection?: ProcessProtection;
}

/** What protects the process as a whole (no broker's): read by /metrics when scraped. */
export interface ProcessProtection {
  readonly guard: ConnectionGuard;
  readonly overload: OverloadWatch;
  readonly clientLog: LogSampler;
  /** The process's unsent bytes and their budget (`--max-total-write-buffer`). */
  readonly writeBudget: { readonly total: number; readonly max: number };
  /** Each MQTT listener's name and its accept pacing figures. */
  listeners(): Iterable<{ readonly name: string; readonly pacer: PacingFigures }>;
}

/** The path parameters of every route under `.../namespaces/{namespace}/brokers/{broker}`. */
export type BrokerPath = { account_id: string; namespace: string; broker: string };

/** The live broker such a request names (the tenancy throws the API's not-found when none). */
export function brokerOfRequest(ctx: ApiContext, req: FastifyRequest) {
  const p = req.params as BrokerPath;
  return ctx.tenancy.tenant(p.account_id, p.namespace, p.broker).broker;
}
