/**
 * The admin plane: the Cloudflare Pub/Sub-compatible REST API (fastify) with its OpenAPI
 * document, health and readiness. It changes tenants only through src/tenancy and never
 * touches sockets; every response is a Cloudflare envelope.
 */
export { buildApi } from './api.ts';
export type { ApiContext } from './context.ts';
export type { ListenerPorts } from './present.ts';
