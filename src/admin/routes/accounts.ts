/**
 * Accounts and admin API tokens. `GET /client/v4/accounts` is Cloudflare's route for
 * discovering the account id a token may use. Tokens live at Cloudflare's account-owned token
 * path (`/accounts/{account_id}/tokens`): create returns the secret once (`value`), list never
 * does, delete revokes at once.
 */
import type { FastifyInstance } from 'fastify';
import { requireToken } from '../access.ts';
import type { ApiContext } from '../context.ts';
import { ok, okList } from '../envelope.ts';
import { presentApiToken } from '../present.ts';
import {
  account,
  accountParams,
  apiToken,
  createTokenBody,
  envelope,
  errorEnvelope,
  tokenParams,
} from '../schemas.ts';

export function accountRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get(
    '/client/v4/accounts',
    {
      schema: {
        summary: 'List the accounts this token may use',
        tags: ['accounts'],
        response: { 200: envelope({ type: 'array', items: account }, true), '4xx': errorEnvelope },
      },
    },
    async (req) => {
      const { accountId } = requireToken(req);
      const accounts = ctx.tenancy.accounts
        .filter((a) => a.id === accountId)
        .map((a) => ({ id: a.id, name: a.name, created_on: a.createdOn }));
      return okList(accounts, accounts.length, 1, Math.max(1, accounts.length));
    },
  );

  app.get(
    '/client/v4/accounts/:account_id/tokens',
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
    '/client/v4/accounts/:account_id/tokens',
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
      const { name } = req.body as { name: string };
      const { record, value } = ctx.tenancy.createApiToken(account_id, name);
      ctx.logger.info({ token: record.id, name }, 'admin API token created');
      return ok(presentApiToken(record, value));
    },
  );

  app.delete(
    '/client/v4/accounts/:account_id/tokens/:token_id',
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
      ctx.tenancy.deleteApiToken(account_id, token_id);
      ctx.logger.info({ token: token_id }, 'admin API token revoked');
      return ok({ id: token_id });
    },
  );
}
