/**
 * `pubsub token create|list|revoke`: admin API tokens of the account, at Cloudflare's
 * account-owned token path `/client/v4/accounts/{account_id}/tokens`. The secret exists in
 * clear only in the create answer (`result.value`); the server keeps a hash. `create` prints it
 * on stdout alone (human mode: one line, so `$(pubsub token create ci)` captures it) and the
 * token's id on stderr.
 *
 * `pubsub token show-bootstrap` needs no server: it prints the bootstrap token from
 * `<data-dir>/admin-token` (written by the first `pubsub serve`), the same way, on stdout alone.
 */
import { join } from 'node:path';
import type { Command } from 'commander';
import { segment } from './api-client.ts';
import { CliError } from './cli-error.ts';
import { type ApiFlags, connect, readLine, resolveDataDir } from './connection.ts';
import { print, printJson, status, table, text, when } from './output.ts';
import { verb, withApiOptions, withDataDirOption } from './verb.ts';

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

  withDataDirOption(
    token
      .command('show-bootstrap')
      .description("print the bootstrap admin API token from the server's data directory (no server needed)"),
  ).action(
    verb<ApiFlags>(async (_args, flags) => {
      const dataDir = resolveDataDir(flags);
      if (dataDir === ':memory:')
        throw new CliError('a :memory: server keeps its bootstrap token nowhere but its start-up banner');
      const file = join(dataDir, 'admin-token');
      const secret = readLine(file);
      if (secret === undefined || secret === '')
        throw new CliError(
          `no bootstrap admin token: ${file} not found (\`pubsub serve\` writes it at its first start; --data-dir or PUBSUB_DATA_DIR to point at the server's data directory)`,
        );
      print(`${secret}\n`);
    }),
  );

  return token;
}
