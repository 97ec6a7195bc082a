/**
 * Admin API tokens, at Cloudflare's account-owned token path (`/accounts/{account_id}/tokens`):
 * create returns the secret once (`value`), list and get never do, `PUT .../{id}` replaces its
 * name and grant (the create body; the secret stays), `PUT .../{id}/value` rolls it (a new
 * secret, returned once as `result`, Cloudflare's Roll Token), delete revokes at once. A token is
 * created with a grant (`permissions`, `resources`, `expires_on`, `not_before`,
 * `condition.request_ip`) no wider than the creating token's (src/tenancy/token-scope.ts), and
 * changes, rolls or revokes only tokens no wider than itself.
 * `GET /client/v4/user/tokens/verify` (and the account-owned `.../tokens/verify`) answer as
 * Cloudflare's: `{id, status: "active", expires_on?, not_before?}`; a token that is not active
 * never gets that far (403 in access.ts).
 */
import type { FastifyInstance } from 'fastify';
import type { TokenRequest } from '../../tenancy/index.ts';
import { requireToken } from '../access.ts';
import type { ApiContext } from '../context.ts';
import { ok, okList } from '../envelope.ts';
import { presentApiToken, presentVerifiedToken } from '../present.ts';
import {
  accountParams,
  apiToken,
  createTokenBody,
  envelope,
  errorEnvelope,
  tokenParams,
  verifiedToken,
} from '../schemas.ts';

const TOKENS = '/client/v4/accounts/:account_id/tokens';

/** Cloudflare's message beside a verified token. */
const VERIFIED = { code: 10000, message: 'This API Token is valid and active', type: null };

export function tokenRoutes(app: FastifyInstance, ctx: ApiContext): void {
  for (const url of ['/client/v4/user/tokens/verify', `${TOKENS}/verify`])
    app.get(
      url,
      {
        schema: {
          summary: 'Verify the API token of this request',
          tags: ['tokens'],
          ...(url.includes(':account_id') ? { params: accountParams } : {}),
          response: { 200: envelope(verifiedToken), '4xx': errorEnvelope },
        },
      },
      async (req) => ({ ...ok(presentVerifiedToken(requireToken(req))), messages: [VERIFIED] }),
    );

  app.get(
    TOKENS,
    {
      schema: {
        summary: 'List admin API tokens',
        tags: ['tokens'],
        params: accountParams,
        response: { 200: envelope({ type: 'array', items: apiToken }, true), '4xx': errorEnvelope },
      },
    },
    async (req) => {
      const { account_id } = req.params as { account_id: string };
      const tokens = ctx.tenancy.listApiTokens(account_id).map((t) => presentApiToken(t));
      return okList(tokens, tokens.length, 1, Math.max(1, tokens.length));
    },
  );

  app.post(
    TOKENS,
    {
      schema: {
        summary: 'Create an admin API token (the secret is in result.value, shown once)',
        tags: ['tokens'],
        params: accountParams,
        body: createTokenBody,
        response: { 200: envelope(apiToken), '4xx': errorEnvelope },
      },
    },
    async (req) => {
      const { account_id } = req.params as { account_id: string };
      const body = req.body as TokenRequest;
      const { record, value } = ctx.tenancy.createApiToken(requireToken(req), account_id, body);
      ctx.logger.info(
        { token: record.id, name: record.name, permissions: record.permissions },
        'admin API token created',
      );
      return ok(presentApiToken(record, value));
    },
  );

  app.get(
    `${TOKENS}/:token_id`,
    {
      schema: {
        summary: 'Get an admin API token (never its secret)',
        tags: ['tokens'],
        params: tokenParams,
        response: { 200: envelope(apiToken), '4xx': errorEnvelope },
      },
    },
    async (req) => {
      const { account_id, token_id } = req.params as { account_id: string; token_id: string };
      return ok(presentApiToken(ctx.tenancy.getApiToken(account_id, token_id)));
    },
  );

  app.put(
    `${TOKENS}/:token_id`,
    {
      schema: {
        summary: "Replace an admin API token's name and grant (its secret stays)",
        tags: ['tokens'],
        params: tokenParams,
        body: createTokenBody,
        response: { 200: envelope(apiToken), '4xx': errorEnvelope },
      },
    },
    async (req) => {
      const { account_id, token_id } = req.params as { account_id: string; token_id: string };
      const body = req.body as TokenRequest;
      const record = ctx.tenancy.updateApiToken(requireToken(req), account_id, token_id, body);
      ctx.logger.info(
        { token: record.id, name: record.name, permissions: record.permissions },
        'admin API token updated',
      );
      return ok(presentApiToken(record));
    },
  );

  app.put(
    `${TOKENS}/:token_id/value`,
    {
      schema: {
        summary: 'Roll an admin API token: a new secret (in result, shown once); the old one stops working',
        tags: ['tokens'],
        params: tokenParams,
        response: { 200: envelope({ type: 'string' }), '4xx': errorEnvelope },
      },
    },
    async (req) => {
      const { account_id, token_id } = req.params as { account_id: string; token_id: string };
      const value = ctx.tenancy.rollApiToken(requireToken(req), account_id, token_id);
      ctx.logger.info({ token: token_id }, 'admin API token rolled');
      return ok(value);
    },
  );

  app.delete(
    `${TOKENS}/:token_id`,
    {
      schema: {
        summary: 'Revoke an admin API token',
        tags: ['tokens'],
        params: tokenParams,
        response: {
          200: envelope({ type: 'object', properties: { id: { type: 'string' } } }),
          '4xx': errorEnvelope,
        },
      },
    },
    async (req) => {
      const { account_id, token_id } = req.params as { account_id: string; token_id: string };
      ctx.tenancy.deleteApiToken(requireToken(req), account_id, token_id);
      ctx.logger.info({ token: token_id }, 'admin API token revoked');
      return ok({ id: token_id });
    },
  );
}
