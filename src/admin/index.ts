/**
 * The admin plane: the Cloudflare Pub/Sub-compatible REST API (fastify) with its OpenAPI
 * document, health and readiness. It changes tenants only through src/tenancy and never
 * touches sockets; every response but the health probes' `{ status }` is a Cloudflare
 * envelope. api.ts builds the fastify instance and registers the routes (routes/), which take
 * their context from context.ts and never import api.ts. audit.ts records every change made
 * through the API (hooks around the routes; audit-objects.ts, redact.ts).
 */
export { buildApi } from './api.ts';
export type { ApiContext } from './context.ts';
export type { ListenerPorts } from './present.ts';
