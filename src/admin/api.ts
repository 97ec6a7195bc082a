/**
 * The admin REST API (fastify): Cloudflare Pub/Sub's routes under
 * `/client/v4/accounts/{account_id}/pubsub/...`, in Cloudflare's envelope.
 *
 * Pipeline of a request: route → access (onRequest, src/admin/access.ts: deny by default on the
 * matched route; `Authorization: Bearer <token>` or the legacy `X-Auth-Email` + `X-Auth-Key`,
 * failure 403 code 10000, as for an expired token; a client address the token's condition
 * refuses 403 code 9109; an ambiguous path 400 code 7010; the route's permission from
 * route-permissions.ts, else 403 code 9109; an account, namespace or broker out of the token's
 * scope answers as a missing one, 404) →
 * body parse (JSON only: 415 code 6003; malformed 400 code 6007; too large 413 code 6008) →
 * schema validation (400 code 6009) → handler. Every error leaves through one error handler
 * that turns it into the envelope; only the not-found handler and `frameworkErrors` (errors
 * raised before routing) write error bodies besides it, in the same envelope. Every change
 * (made or refused) by an authenticated caller is recorded on its way out (src/admin/audit.ts).
 * Only the table's `public` routes (`/healthz`, `/livez`, `/readyz`, `/openapi.json`, `/metrics`,
 * which has its own optional token, and the web console's static files) need no admin token; an unknown path without a token is
 * 403, not 404.
 */
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import { parseCidrList } from '../cidr-list.ts';
import { ApiError } from '../errors.ts';
import { authenticate, checkAccess, isPublicRoute, requireToken } from './access.ts';
import { auditChanges } from './audit.ts';
import { authenticateLimited, refusalOf, throttleAuthentication } from './auth-throttle.ts';
import { clientAddress } from './client-address.ts';
import { clusterControlPlane } from './cluster-control-plane.ts';
import type { ApiContext, RegisteredRoute } from './context.ts';
import { failure } from './envelope.ts';
import { OpenApiDocument } from './openapi.ts';
import {
  accountRoutes,
  auditRoutes,
  brokerRoutes,
  clientRoutes,
  clusterRoutes,
  consoleRoutes,
  credentialRoutes,
  healthRoutes,
  hookRoutes,
  metricsRoutes,
  namespaceRoutes,
  retainedRoutes,
  statsRoutes,
  tokenRoutes,
  traceRoutes,
} from './routes/index.ts';

export async function buildApi(ctx: ApiContext): Promise<FastifyInstance> {
  const { apiRequestTimeoutMs, apiIdleTimeoutMs, apiKeepAliveTimeoutMs } = ctx.config;
  const trustedProxies =
    ctx.config.apiTrustProxy === '' ? undefined : parseCidrList(ctx.config.apiTrustProxy);
  const app = Fastify({
    logger: false,
    bodyLimit: ctx.config.apiBodyLimit,
    // Bounded connections (Fastify's defaults have no request timeout): a request trickled
    // byte by byte is answered 408 and closed after apiRequestTimeoutMs, a silent connection
    // closed after apiIdleTimeoutMs. Node checks the request timeout on an interval, so it
    // runs at least every second.
    requestTimeout: apiRequestTimeoutMs,
    connectionTimeout: apiIdleTimeoutMs,
    keepAliveTimeout: apiKeepAliveTimeoutMs,
    http: {
      requestTimeout: apiRequestTimeoutMs,
      headersTimeout: Math.min(apiRequestTimeoutMs, 10_000),
      connectionsCheckingInterval: Math.min(1000, apiRequestTimeoutMs),
    },
    routerOptions: { ignoreTrailingSlash: true },
    // Errors raised before routing, answered in the envelope like every other error: a path
    // that is not valid percent-encoding (`/%zz`) is 400; anything else the router refuses (a
    // parameter over its length limit) is a path that matches no route: 403 without a token,
    // then 404, so an anonymous caller cannot tell a parametric route from no route.
    frameworkErrors: (err, req, reply) => {
      ctx.logger.debug({ url: req.url, code: err.code }, 'admin API: request refused before routing');
      let apiError: ApiError;
      if (err.code === 'FST_ERR_BAD_URL')
        apiError = new ApiError('AMBIGUOUS_PATH', 'request path is not valid percent-encoding');
      else {
        try {
          req.clientAddress = clientAddress(req, trustedProxies);
          authenticateLimited(ctx.tenancy.authFailures, req, () => authenticate(ctx.tenancy, req));
          apiError = noRoute(req);
        } catch (refused) {
          apiError = refusalOf(refused);
        }
      }
      if (apiError.retryAfterSeconds !== undefined) reply.header('retry-after', apiError.retryAfterSeconds);
      return (reply as FastifyReply).code(apiError.status).send(failure(apiError));
    },
    // No type coercion: a body's `null` or number stays what the client sent (query strings are
    // read by the routes, src/admin/query.ts).
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
  });
  app.decorateRequest('apiToken', null);
  app.decorateRequest('routePermission', null);
  app.decorateRequest('clientAddress', '');
  const routes: RegisteredRoute[] = [];
  app.decorate('registeredRoutes', routes);
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) routes.push({ method, url: route.url });
  });

  // Before the first route, so that the document sees them all (openapi.ts: loaded on first use).
  const openapi = new OpenApiDocument(app);

  // JSON bodies only; an empty body (curl -X POST with no data) is no body.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = body as string;
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch (err) {
      done(
        new ApiError('MALFORMED_JSON', `malformed JSON in request body: ${(err as Error).message}`),
        undefined,
      );
    }
  });

  // Cluster mode: changes go to the cluster's control plane before the answer, and a token is
  // judged once this node applied what the bucket held when the request came.
  if (ctx.cluster !== undefined) clusterControlPlane(app, ctx.cluster);
  // Deny by default, decided on the matched route (src/admin/access.ts), under the brute-force
  // limiter (auth-throttle.ts), which counts failures by the address access.ts trusts.
  app.addHook('onRequest', async (req) => {
    req.clientAddress = clientAddress(req, trustedProxies);
    return throttleAuthentication(ctx.tenancy.authFailures, req, () => checkAccess(ctx.tenancy, req));
  });
  // Fail closed: a non-public route never reaches its handler without a token.
  app.addHook('preHandler', async (req) => {
    if (!isPublicRoute(req.method, req.routeOptions.url)) requireToken(req);
  });
  // Every change through the API is recorded, with no audit code in the routes (audit.ts).
  auditChanges(app, ctx);

  app.setErrorHandler((err: FastifyError | ApiError, req, reply) => {
    const apiError = toApiError(err, ctx.config.apiBodyLimit);
    if (apiError.status >= 500)
      ctx.logger.error({ err, url: req.url, method: req.method }, 'admin API error');
    else ctx.logger.debug({ url: req.url, method: req.method, code: apiError.code }, apiError.message);
    if (apiError.retryAfterSeconds !== undefined) reply.header('retry-after', apiError.retryAfterSeconds);
    return reply.code(apiError.status).send(failure(apiError));
  });
  app.setNotFoundHandler((req, reply) => {
    const err = noRoute(req);
    return reply.code(err.status).send(failure(err));
  });

  app.get('/openapi.json', { schema: { hide: true } }, () => openapi.get());
  healthRoutes(app, ctx);
  accountRoutes(app, ctx);
  tokenRoutes(app, ctx);
  auditRoutes(app, ctx);
  namespaceRoutes(app, ctx);
  brokerRoutes(app, ctx);
  credentialRoutes(app, ctx);
  hookRoutes(app, ctx);
  clientRoutes(app, ctx);
  clusterRoutes(app, ctx);
  retainedRoutes(app, ctx);
  traceRoutes(app, ctx);
  metricsRoutes(app, ctx);
  statsRoutes(app, ctx);
  consoleRoutes(app);
  await app.ready();
  return app;
}

function noRoute(req: FastifyRequest): ApiError {
  return new ApiError('NO_ROUTE', `no route for ${req.method} ${req.url.split('?')[0]}`);
}

function toApiError(err: FastifyError | ApiError, bodyLimit: number): ApiError {
  if (err instanceof ApiError) return err;
  if (err.validation !== undefined)
    return new ApiError('VALIDATION_FAILED', `invalid request: ${err.message}`);
  switch (err.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new ApiError(
        'INVALID_CONTENT_TYPE',
        'request body must be JSON (Content-Type: application/json)',
      );
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError('BODY_TOO_LARGE', `request body larger than ${bodyLimit} bytes`);
    case 'FST_ERR_CTP_INVALID_TYPE':
      return new ApiError('INVALID_CONTENT_TYPE', err.message);
  }
  if (err.statusCode !== undefined && err.statusCode < 500)
    return new ApiError('INVALID_PARAMETER', err.message);
  return new ApiError('INTERNAL');
}
