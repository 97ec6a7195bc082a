/**
 * `GET /metrics`: the server's Prometheus metrics in the text exposition format (../metrics.ts
 * builds them; docs/observability.md lists them). Public in access.ts, as Prometheus scrapes
 * without an admin token; with `--metrics-token` set it wants `Authorization: Bearer <token>`:
 * none is 401 (with `WWW-Authenticate: Bearer`), another token 403, both in the API envelope.
 * The token is compared in constant time (SHA-256 of both sides, then timingSafeEqual), so the
 * answer's timing says nothing of how much of a guess matched.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../../errors.ts';
import type { ApiContext } from '../context.ts';
import type { ServerMetrics } from '../metrics.ts';

const sha256 = (text: string): Buffer => createHash('sha256').update(text).digest();

export function metricsRoutes(app: FastifyInstance, ctx: ApiContext): void {
  // prom-client (and the OpenTelemetry API it loads: ~80 modules) is loaded at the first scrape.
  let metrics: Promise<ServerMetrics> | undefined;
  const token = ctx.config.metricsToken;
  const expected = token === '' ? undefined : sha256(token);
  app.get(
    '/metrics',
    {
      schema: {
        summary: 'Prometheus metrics (text exposition format)',
        description:
          'Public unless the server runs with --metrics-token, then it needs Authorization: Bearer <metrics token>.',
        tags: ['metrics'],
        security: [],
      },
    },
    async (req, reply) => {
      if (expected !== undefined) checkToken(req, reply, expected);
      metrics ??= import('../metrics.ts').then(
        ({ ServerMetrics }) => new ServerMetrics(ctx.tenancy, ctx.nodeName, ctx.protection),
      );
      const { registry } = await metrics;
      // The cluster's series, in cluster mode (its module loads prom-client too: loaded here).
      if (ctx.cluster !== undefined)
        (await import('../cluster-metrics.ts')).registerClusterMetrics(registry, ctx.cluster);
      const text = await registry.metrics();
      return reply.header('content-type', registry.contentType).send(text);
    },
  );
}

/** Throws 401 without a bearer token, 403 with another one than `--metrics-token`. */
function checkToken(req: FastifyRequest, reply: FastifyReply, expected: Buffer): void {
  const authorization = req.headers.authorization;
  const match = typeof authorization === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(authorization) : null;
  if (match === null) {
    reply.header('www-authenticate', 'Bearer realm="metrics"'); // RFC 6750 section 3
    throw new ApiError(
      'METRICS_TOKEN_REQUIRED',
      'send Authorization: Bearer <metrics token> (--metrics-token)',
    );
  }
  if (!timingSafeEqual(sha256(match[1]!), expected))
    throw new ApiError('AUTHENTICATION_ERROR', 'wrong metrics token');
}
