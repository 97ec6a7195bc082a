/**
 * `pubsub account list` (also `pubsub accounts`): the accounts the token may use (an operator
 * token: every account), from Cloudflare's `GET /client/v4/accounts`, so a remote user can find
 * the id to pass as `--account` or PUBSUB_ACCOUNT_ID. With an operator token:
 * `pubsub account create NAME` (prints the new id on stdout alone), `account rename ID NAME`,
 * and `account delete ID`, which asks first (see verb.ts) because it removes the account's
 * namespaces, brokers and tokens and disconnects its clients.
 */
import type { Command } from 'commander';
import { segment } from './api-client.ts';
import { type ApiFlags, connectWithoutAccount } from './connection.ts';
import { print, printJson, status, table, text, when } from './output.ts';
import { confirm, verb, withApiOptions, withYes } from './verb.ts';

interface AccountResult {
  id: string;
  name?: string;
  created_on?: string;
}

const ACCOUNTS = '/client/v4/accounts';
const accountPath = (id: string): string => `${ACCOUNTS}/${segment(id)}`;

const listAccounts = verb<ApiFlags>(async (_args, flags) => {
  const client = connectWithoutAccount(flags);
  const list = await client.request<AccountResult[]>('GET', ACCOUNTS);
  if (flags.json) return printJson(list);
  if (list.length === 0) return status('No accounts.');
  print(
    table(
      ['ID', 'NAME', 'CREATED'],
      list.map((a) => [a.id, text(a.name), when(a.created_on)]),
    ),
  );
});

/** Options every account verb takes: connection and output, but no `--account` (the id is an argument). */
const accountVerb = (command: Command): Command => withApiOptions(command, { account: false });

export function addAccountCommands(program: Command): void {
  const account = program
    .command('account')
    .description('show the accounts the API token may use; with an operator token, manage them');
  accountVerb(account.command('list').description('list the accounts the API token may use')).action(
    listAccounts,
  );
  accountVerb(program.command('accounts').description('same as `account list`')).action(listAccounts);

  accountVerb(
    account.command('create <name>').description('create an account (operator); prints its id on stdout'),
  ).action(
    verb<ApiFlags>(async ([name], flags) => {
      const created = await connectWithoutAccount(flags).request<AccountResult>('POST', ACCOUNTS, {
        body: { name },
      });
      if (flags.json) return printJson(created);
      status(`Created account ${created.name} (id ${created.id}).`);
      print(`${created.id}\n`);
    }),
  );

  accountVerb(account.command('rename <id> <name>').description('rename an account (operator)')).action(
    verb<ApiFlags>(async ([id, name], flags) => {
      const renamed = await connectWithoutAccount(flags).request<AccountResult>('PATCH', accountPath(id!), {
        body: { name },
      });
      if (flags.json) return printJson(renamed);
      status(`Renamed account ${renamed.id} to ${renamed.name}.`);
    }),
  );

  accountVerb(
    withYes(
      account
        .command('delete <id>')
        .description(
          'delete an account (operator): its namespaces, brokers and API tokens go, its clients are disconnected',
        ),
    ),
  ).action(
    verb<ApiFlags & { yes?: boolean }>(async ([id], flags) => {
      const client = connectWithoutAccount(flags);
      await confirm(
        `Delete account ${id} with all its namespaces, brokers and API tokens (its clients are disconnected)`,
        flags.yes,
      );
      const result = await client.request('DELETE', accountPath(id!));
      if (flags.json) return printJson(result);
      status(`Deleted account ${id}.`);
    }),
  );
}
