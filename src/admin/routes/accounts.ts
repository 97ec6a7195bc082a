/**
 * Accounts: `GET /client/v4/accounts` (Cloudflare's route for discovering the accounts a token
 * may use: every account for an operator token), `GET /client/v4/accounts/{account_id}`, and
 * the operator's `POST /client/v4/accounts {"name"}`, `PATCH|PUT .../{account_id} {"name"}`
 * (rename) and `DELETE .../{account_id}`, which removes the account's namespaces, brokers
 * (their clients get DISCONNECT 0x98), keys, client credentials and API tokens. An operator
 * cannot delete the account that owns its own token (it would lock itself out).
 * Permissions are in ../route-permissions.ts; access.ts has already refused an account the
 * token may not use (404).
 */
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../../errors.ts';
import { isOperator } from '../../tenancy/index.ts';
import { requireToken } from '../access.ts';
import type { ApiContext } from '../context.ts';
import { ok, okList } from '../envelope.ts';
import { presentAccount } from '../present.ts';
import { account, accountBody, accountParams, envelope, errorEnvelope } from '../schemas.ts';

const ONE = '/client/v4/accounts/:account_id';

export function accountRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const t = ctx.tenancy;

  app.get(
    '/client/v4/accounts',
    {
      schema: {
        summary: 'List the accounts this token may use (an operator token: every account)',
        tags: ['accounts'],
        response: { 200: envelope({ type: 'array', items: account }, true), '4xx': errorEnvelope },
      },
    },
    async (req) => {
      const token = requireToken(req);
      const accounts = t.accounts
        .filter((a) => isOperator(token) || token.accounts.includes(a.id))
        .map(presentAccount);
      return okList(accounts, accounts.length, 1, Math.max(1, accounts.length));
    },
  );

  app.post(
    '/client/v4/accounts',
    {
      schema: {
        summary: 'Create an account (operator)',
        tags: ['accounts'],
        body: accountBody,
        response: { 200: envelope(account), '4xx': errorEnvelope },
      },
    },
    async (req) => ok(presentAccount(t.createAccount((req.body as { name: string }).name))),
  );

  app.get(
    ONE,
    {
      schema: {
        summary: 'Describe an account',
        tags: ['accounts'],
        params: accountParams,
        response: { 200: envelope(account), '4xx': errorEnvelope },
      },
    },
    async (req) => ok(presentAccount(t.account((req.params as { account_id: string }).account_id))),
  );

  for (const method of ['patch', 'put'] as const)
    app[method](
      ONE,
      {
        schema: {
          summary: 'Rename an account (operator)',
          tags: ['accounts'],
          params: accountParams,
          body: accountBody,
          response: { 200: envelope(account), '4xx': errorEnvelope },
        },
      },
      async (req) => {
        const { account_id } = req.params as { account_id: string };
        return ok(presentAccount(t.renameAccount(account_id, (req.body as { name: string }).name)));
      },
    );

  app.delete(
    ONE,
    {
      schema: {
        summary: 'Delete an account and everything under it; its clients are disconnected (operator)',
        tags: ['accounts'],
        params: accountParams,
        response: {
          200: envelope({ type: 'object', properties: { id: { type: 'string' } } }),
          '4xx': errorEnvelope,
        },
      },
    },
    async (req) => {
      const { account_id } = req.params as { account_id: string };
      if (requireToken(req).accountId === account_id)
        throw new ApiError(
          'INVALID_PARAMETER',
          `account ${account_id} owns the token of this request; delete it with an operator token of another account`,
        );
      t.deleteAccount(account_id);
      return ok({ id: account_id });
    },
  );
}
