/**
 * Liveness and readiness, without authentication, for process managers and load balancers:
 * `/healthz` answers while the process serves HTTP; `/readyz` is 200 once every listener is up
 * and 503 while starting or shutting down.
 */
import type { FastifyInstance } from 'fastify';
import { HTTP_REFUSALS } from '../../errors.ts';
import type { ApiContext } from '../context.ts';

export function healthRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const status = {
    type: 'object',
    properties: { status: { type: 'string' } },
  };
  app.get(
    '/healthz',
    { schema: { summary: 'Liveness', tags: ['health'], security: [], response: { 200: status } } },
    async () => ({ status: 'ok' }),
  );
  app.get(
    '/readyz',
    {
      schema: {
        summary: 'Readiness',
        tags: ['health'],
        security: [],
        response: { 200: status, [HTTP_REFUSALS.NOT_READY.http]: status },
      },
    },
    async (_req, reply) =>
      ctx.ready()
        ? { status: 'ready' }
        : reply.code(HTTP_REFUSALS.NOT_READY.http).send({ status: HTTP_REFUSALS.NOT_READY.message }),
  );
}
