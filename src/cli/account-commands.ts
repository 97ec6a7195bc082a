/**
 * `pubsub account list` (also `pubsub accounts`): the accounts the token may use, from
 * Cloudflare's `GET /client/v4/accounts`, so a remote user can find the id to pass as
 * `--account` or PUBSUB_ACCOUNT_ID.
 */
import type { Command } from 'commander';
import { type ApiFlags, connectWithoutAccount } from './connection.ts';
import { print, printJson, status, table, text, when } from './output.ts';
import { verb, withApiOptions } from './verb.ts';

interface AccountResult {
  id: string;
  name?: string;
  created_on?: string;
}

const listAccounts = verb<ApiFlags>(async (_args, flags) => {
  const client = connectWithoutAccount(flags);
  const list = await client.request<AccountResult[]>('GET', '/client/v4/accounts');
  if (flags.json) return printJson(list);
  if (list.length === 0) return status('No accounts.');
  print(
    table(
      ['ID', 'NAME', 'CREATED'],
      list.map((a) => [a.id, text(a.name), when(a.created_on)]),
    ),
  );
});

export function addAccountCommands(program: Command): void {
  const account = program.command('account').description('show the accounts the API token may use');
  withApiOptions(account.command('list').description('list the accounts the API token may use')).action(
    listAccounts,
  );
  withApiOptions(program.command('accounts').description('same as `account list`')).action(listAccounts);
}
