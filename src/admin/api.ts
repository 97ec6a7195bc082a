/**
 * The admin REST API (fastify): Cloudflare Pub/Sub's routes under
 * `/client/v4/accounts/{account_id}/pubsub/...`, in Cloudflare's envelope.
 *
 * Pipeline of a request: route → authenticate (onRequest: `Authorization: Bearer <token>` or
 * the legacy `X-Auth-Email` + `X-Auth-Key`; failure 403 code 10000) → account check (the path's
 * account must be the token's: malformed id 404 code 7003, another account 403 code 9109) →
 * body parse (JSON only: 415 code 6003; malformed 400 code 6007; too large 413 code 6008) →
 * schema validation (400 code 6009) → handler. Every error leaves through one error handler
 * that turns it into the envelope; nothing else writes error bodies.
 * `/healthz`, `/readyz` and `/openapi.json` need no token.
 */
import swagger from '@fastify/swagger';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import { ApiError } from '../errors.ts';
import type { ApiTokenRecord } from '../store/index.ts';
import type { Tenancy } from '../tenancy/tenancy.ts';
import { failure } from './envelope.ts';
import type { ListenerPorts } from './present.ts';
import { accountRoutes } from './routes/accounts.ts';
import { brokerRoutes } from './routes/brokers.ts';
import { credentialRoutes } from './routes/credentials.ts';
import { healthRoutes } from './routes/health.ts';
import { hookRoutes } from './routes/hooks.ts';
import { namespaceRoutes } from './routes/namespaces.ts';

declare module 'fastify' {
  interface FastifyRequest {
    apiToken: ApiTokenRecord | null;
  }
}

export interface ApiContext {
  readonly tenancy: Tenancy;
  readonly config: Config;
  readonly logger: Logger;
  /** Ports of the running MQTT listeners, for broker endpoints. */
  ports(): ListenerPorts;
  /** True once every listener is up and the server is not shutting down. */
  ready(): boolean;
}

const ACCOUNT_ID = /^[0-9a-f]{32}$/;

export async function buildApi(ctx: ApiContext): Promise<FastifyInstance> {
  const app = Fastify({
    logger: false,
    bodyLimit: ctx.config.apiBodyLimit,
    routerOptions: { ignoreTrailingSlash: true },
    // No type coercion: a body's `null` or number stays what the client sent (query strings are
    // read by the routes, src/admin/query.ts).
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
  });
  app.decorateRequest('apiToken', null);

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'pubsub admin API',
        description:
          'Cloudflare Pub/Sub-compatible management API of a self-hosted pubsub server. Every response is a Cloudflare envelope {result, success, errors, messages}.',
        version: '1',
      },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'an admin API token' },
          authKey: {
            type: 'apiKey',
            in: 'header',
            name: 'X-Auth-Key',
            description: 'legacy: with X-Auth-Email',
          },
        },
      },
      security: [{ bearer: [] }, { authKey: [] }],
    },
  });

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

  app.addHook('onRequest', async (req) => {
    if (!req.url.startsWith('/client/v4/')) return;
    req.apiToken = authenticate(ctx, req);
    const accountId = (req.params as { account_id?: string } | undefined)?.account_id;
    if (accountId === undefined) return;
    if (!ACCOUNT_ID.test(accountId))
      throw new ApiError('ACCOUNT_NOT_FOUND', `could not route to account ${accountId}: identifier invalid`);
    if (accountId !== req.apiToken.accountId)
      throw new ApiError('ACCOUNT_FORBIDDEN', `this token is not authorized for account ${accountId}`);
  });

  app.setErrorHandler((err: FastifyError | ApiError, req, reply) => {
    const apiError = toApiError(err, ctx.config.apiBodyLimit);
    if (apiError.status >= 500)
      ctx.logger.error({ err, url: req.url, method: req.method }, 'admin API error');
    else ctx.logger.debug({ url: req.url, method: req.method, code: apiError.code }, apiError.message);
    return reply.code(apiError.status).send(failure(apiError));
  });
  app.setNotFoundHandler((req, reply) => {
    const err = new ApiError('NO_ROUTE', `no route for ${req.method} ${req.url.split('?')[0]}`);
    return reply.code(err.status).send(failure(err));
  });

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  healthRoutes(app, ctx);
  accountRoutes(app, ctx);
  namespaceRoutes(app, ctx);
  brokerRoutes(app, ctx);
  credentialRoutes(app, ctx);
  hookRoutes(app, ctx);
  await app.ready();
  return app;
}

function authenticate(ctx: ApiContext, req: FastifyRequest): ApiTokenRecord {
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
  const token = ctx.tenancy.verifyApiToken(secret);
  if (token === undefined) throw new ApiError('AUTHENTICATION_ERROR', 'invalid API token');
  return token;
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
