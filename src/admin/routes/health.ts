/**
 * Liveness and readiness, without authentication, for process managers, Kubernetes probes and
 * load balancers (docs/observability.md, "Health and readiness"):
 * - `/healthz` answers while the process serves HTTP;
 * - `/livez` is 503 while the event loop is, or within the last 10 s was, stalled longer than
 *   `--livez-max-stall-ms` (a process that answers HTTP only seconds late is not serving MQTT);
 * - `/readyz` is 200 while every readiness check passes (listeners bound, message store
 *   committing) and 503 naming the failing ones otherwise: while starting, shutting down, or
 *   while the store's commits fail (disk full), and 200 again once they succeed.
 */
import type { FastifyInstance } from 'fastify';
import { HTTP_REFUSALS } from '../../errors.ts';
import type { ApiContext } from '../context.ts';

const status = { type: 'object', properties: { status: { type: 'string' } } };
const readiness = {
  type: 'object',
  properties: {
    status: { type: 'string' },
    failing: { type: 'array', items: { type: 'string' } },
    checks: { type: 'object', additionalProperties: { type: 'string' } },
  },
};
const liveness = {
  type: 'object',
  properties: {
    status: { type: 'string' },
    failing: { type: 'array', items: { type: 'string' } },
    eventLoopStallMs: { type: 'integer' },
    maxStallMs: { type: 'integer' },
  },
};

export function healthRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get(
    '/healthz',
    { schema: { summary: 'Health', tags: ['health'], security: [], response: { 200: status } } },
    async () => ({ status: 'ok' }),
  );
  app.get(
    '/livez',
    {
      schema: {
        summary: 'Liveness: the event loop is not stalled',
        tags: ['health'],
        security: [],
        response: { 200: liveness, [HTTP_REFUSALS.NOT_LIVE.http]: liveness },
      },
    },
    async (_req, reply) => {
      const maxStallMs = ctx.config.livezMaxStallMs;
      const eventLoopStallMs = ctx.eventLoopStallMs();
      if (eventLoopStallMs <= maxStallMs) return { status: 'ok', eventLoopStallMs, maxStallMs };
      return reply.code(HTTP_REFUSALS.NOT_LIVE.http).send({
        status: HTTP_REFUSALS.NOT_LIVE.message,
        failing: ['eventLoop'],
        eventLoopStallMs,
        maxStallMs,
      });
    },
  );
  app.get(
    '/readyz',
    {
      schema: {
        summary: 'Readiness: listeners bound, message store committing',
        tags: ['health'],
        security: [],
        response: { 200: readiness, [HTTP_REFUSALS.NOT_READY.http]: readiness },
      },
    },
    async (_req, reply) => {
      const results = ctx.readiness();
      const checks: Record<string, string> = {};
      const failing: string[] = [];
      for (const [name, ok] of Object.entries(results)) {
        checks[name] = ok ? 'ok' : 'failing';
        if (!ok) failing.push(name);
      }
      if (failing.length === 0) return { status: 'ready', checks };
      return reply
        .code(HTTP_REFUSALS.NOT_READY.http)
        .send({ status: HTTP_REFUSALS.NOT_READY.message, failing, checks });
    },
  );
}
