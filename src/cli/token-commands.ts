/**
 * `pubsub token create|list|revoke`: admin API tokens of the account, at Cloudflare's
 * account-owned token path `/client/v4/accounts/{account_id}/tokens`. The secret exists in
 * clear only in the create answer (`result.value`); the server keeps a hash. `create` prints it
 * on stdout alone (human mode: one line, so `$(pubsub token create ci)` captures it) and the
 * token's id on stderr.
 */
import type { Command } from 'commander';
import { segment } from './api-client.ts';
import { type ApiFlags, connect } from './connection.ts';
import { print, printJson, status, table, text, when } from './output.ts';
import { verb, withApiOptions } from './verb.ts';

interface TokenResult {
  id: string;
  name: string;
  status?: string;
  issued_on?: string;
  last_used_on?: string | null;
  value?: string;
}

const tokensPath = '/tokens';

export function addTokenCommands(program: Command): Command {
  const token = program.command('token').description('manage admin API tokens');

  withApiOptions(
    token
      .command('create <name>')
      .description('create an admin API token; its secret is printed once, on stdout'),
  ).action(
    verb<ApiFlags>(async ([name], flags) => {
      const api = await connect(flags);
      const t = await api.client.request<TokenResult>('POST', api.accountPath(tokensPath), {
        body: { name },
      });
      if (flags.json) return printJson(t);
      status(`Created admin API token ${t.name} (id ${t.id}). The secret below is shown once:`);
      print(`${t.value}\n`);
    }),
  );

  withApiOptions(token.command('list').description('list admin API tokens (never their secrets)')).action(
    verb<ApiFlags>(async (_args, flags) => {
      const api = await connect(flags);
      const list = await api.client.request<TokenResult[]>('GET', api.accountPath(tokensPath));
      if (flags.json) return printJson(list);
      if (list.length === 0) return status('No admin API tokens.');
      print(
        table(
          ['ID', 'NAME', 'STATUS', 'ISSUED', 'LAST USED'],
          list.map((t) => [t.id, t.name, text(t.status), when(t.issued_on), when(t.last_used_on)]),
        ),
      );
    }),
  );

  withApiOptions(
    token.command('revoke <id>').description('revoke an admin API token at once (see `token list` for ids)'),
  ).action(
    verb<ApiFlags>(async ([id], flags) => {
      const api = await connect(flags);
      const result = await api.client.request('DELETE', api.accountPath(`${tokensPath}/${segment(id!)}`));
      if (flags.json) return printJson(result);
      status(`Revoked admin API token ${id}.`);
    }),
  );

  return token;
}
