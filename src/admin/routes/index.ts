/**
 * The admin API's routes, one file per resource: health probes, accounts, API tokens,
 * namespaces, brokers, broker credentials (keys, client tokens, revocation), on-publish hooks,
 * the web console's static files, the cluster's nodes, a broker's live state (its clients: list,
 * describe, disconnect; its retained messages: list, delete; a packet trace of a client or
 * topic, streamed), the audit log, the Prometheus metrics and each broker's figures for the
 * console (stats). Each registers its routes on the fastify instance with
 * their JSON schemas (from which the OpenAPI document is generated) and takes its context from
 * ../context.ts.
 * Promises: a route changes tenants only through `ctx.tenancy`; its refusals are ApiErrors
 * named in the catalogue (src/errors.ts), thrown by the route or by tenancy; whether a token is needed is decided
 * before it runs, by ../access.ts from the one table ../route-permissions.ts (only the health probes, the OpenAPI
 * document and the metrics are public; the metrics check their own optional token).
 */
export { accountRoutes } from './accounts.ts';
export { auditRoutes } from './audit.ts';
export { brokerRoutes } from './brokers.ts';
export { clientRoutes } from './clients.ts';
export { clusterRoutes } from './cluster.ts';
export { consoleRoutes } from './console.ts';
export { credentialRoutes } from './credentials.ts';
export { healthRoutes } from './health.ts';
export { hookRoutes } from './hooks.ts';
export { metricsRoutes } from './metrics.ts';
export { namespaceRoutes } from './namespaces.ts';
export { retainedRoutes } from './retained.ts';
export { statsRoutes } from './stats.ts';
export { tokenRoutes } from './tokens.ts';
export { traceRoutes } from './trace.ts';
