/**
 * `pubsub token create|list|update|roll|revoke|verify`: admin API tokens of the account, at Cloudflare's
 * account-owned token path `/client/v4/accounts/{account_id}/tokens`. The secret exists in
 * clear only in the create answer (`result.value`); the server keeps a hash. `create` prints it
 * on stdout alone (human mode: one line, so `$(pubsub token create ci)` captures it) and the
 * token's id on stderr. `create` takes the grant as flags (`--permission`, `--account`,
 * `--namespace`, `--broker`, `--expires`, `--allow-ip`, `--deny-ip`; the API refuses a grant
 * wider than the caller's); `update` replaces a token's name and grant with the same flags
 * (`PUT .../tokens/{id}`), `roll` prints a new secret as create does (`PUT .../tokens/{id}/value`,
 * Cloudflare's Roll Token); `verify` asks Cloudflare's `GET /client/v4/user/tokens/verify`.
 *
 * `pubsub token show-bootstrap` needs no server: it prints the bootstrap token from
 * `<data-dir>/admin-token` (written by the first `pubsub serve`), the same way, on stdout alone.
 */
import { join } from 'node:path';
import { type Command, InvalidArgumentError } from 'commander';
import { segment } from './api-client.ts';
import { CliError } from './cli-error.ts';
import { type ApiFlags, connect, connectWithoutAccount, readLine, resolveDataDir } from './connection.ts';
import { print, printJson, status, table, text, when } from './output.ts';
import { durationArgument, verb, withApiOptions, withDataDirOption } from './verb.ts';

interface TokenResult {
  id: string;
  name: string;
  status?: string;
  issued_on?: string;
  last_used_on?: string | null;
  expires_on?: string;
  not_before?: string;
  permissions?: string[];
  resources?: { accounts?: string[]; namespaces?: string[]; brokers?: string[] };
  condition?: { request_ip?: { in?: string[]; not_in?: string[] } };
  value?: string;
}

const tokensPath = '/tokens';

/** The permissions the API knows (src/tenancy/token-scope.ts). */
const PERMISSIONS = ['pubsub:read', 'pubsub:edit', 'tokens:edit', 'operator'];

/** Commander collector of a repeatable option. */
const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

function permission(value: string, previous: string[] = []): string[] {
  if (!PERMISSIONS.includes(value))
    throw new InvalidArgumentError(`must be one of ${PERMISSIONS.join(', ')}`);
  return [...previous, value];
}

interface CreateFlags extends Omit<ApiFlags, 'account'> {
  permission?: string[];
  account?: string[];
  namespace?: string[];
  broker?: string[];
  expires?: number;
  allowIp?: string[];
  denyIp?: string[];
}

/** The create request's body from the flags (the API validates and narrows it). */
function createBody(name: string, flags: CreateFlags): Record<string, unknown> {
  const body: Record<string, unknown> = { name };
  if (flags.permission !== undefined) body.permissions = flags.permission;
  if (flags.expires !== undefined)
    body.expires_on = new Date(Date.now() + flags.expires * 1000).toISOString();
  const resources: Record<string, string[]> = {};
  if (flags.account !== undefined) resources.accounts = flags.account;
  if (flags.namespace !== undefined) resources.namespaces = flags.namespace;
  if (flags.broker !== undefined) resources.brokers = flags.broker;
  if (Object.keys(resources).length > 0) body.resources = resources;
  const requestIp: Record<string, string[]> = {};
  if (flags.allowIp !== undefined) requestIp.in = flags.allowIp;
  if (flags.denyIp !== undefined) requestIp.not_in = flags.denyIp;
  if (Object.keys(requestIp).length > 0) body.condition = { request_ip: requestIp };
  return body;
}

/** The options that say a token's grant (create, and update, which replaces it whole). */
function withGrantOptions(command: Command): Command {
  return command
    .option(
      '--permission <name>',
      `a permission, repeatable (${PERMISSIONS.join(', ')}) [default: pubsub:edit and tokens:edit]`,
      permission,
    )
    .option(
      '--account <id>',
      'an account the token may use, repeatable; the first owns it [PUBSUB_ACCOUNT_ID; default: the first account of GET /client/v4/accounts]',
      collect,
    )
    .option('--namespace <name>', 'limit the token to this namespace, repeatable', collect)
    .option('--broker <broker.namespace>', 'limit the token to this broker, repeatable', collect)
    .option('--expires <duration>', 'expire the token after this long (30d, 12h...)', durationArgument)
    .option('--allow-ip <cidr>', 'accept the token only from this address range, repeatable', collect)
    .option('--deny-ip <cidr>', 'refuse the token from this address range, repeatable', collect);
}

export function addTokenCommands(program: Command): Command {
  const token = program.command('token').description('manage admin API tokens');

  withApiOptions(
    withGrantOptions(
      token
        .command('create <name>')
        .description('create an admin API token; its secret is printed once, on stdout'),
    ),
    { account: false },
  ).action(
    verb<CreateFlags & ApiFlags>(async ([name], flags) => {
      const f = flags as CreateFlags;
      const api = await connect({ ...flags, account: f.account?.[0] });
      const t = await api.client.request<TokenResult>('POST', api.accountPath(tokensPath), {
        body: createBody(name!, f),
      });
      if (flags.json) return printJson(t);
      status(
        `Created admin API token ${t.name} (id ${t.id}; ${(t.permissions ?? []).join(', ')}). The secret below is shown once:`,
      );
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
          ['ID', 'NAME', 'PERMISSIONS', 'STATUS', 'EXPIRES', 'LAST USED'],
          list.map((t) => [
            t.id,
            t.name,
            text(t.permissions?.join(',')),
            text(t.status),
            when(t.expires_on),
            when(t.last_used_on),
          ]),
        ),
      );
    }),
  );

  withApiOptions(
    token.command('verify').description('check the API token in use (GET /client/v4/user/tokens/verify)'),
    { account: false },
  ).action(
    verb<ApiFlags>(async (_args, flags) => {
      const t = await connectWithoutAccount(flags).request<TokenResult>(
        'GET',
        '/client/v4/user/tokens/verify',
      );
      if (flags.json) return printJson(t);
      const window = [
        t.not_before === undefined ? '' : `valid from ${when(t.not_before)}`,
        t.expires_on === undefined ? 'never expires' : `expires ${when(t.expires_on)}`,
      ].filter((part) => part !== '');
      print(`Token ${t.id} is ${t.status}; ${window.join(', ')}.\n`);
    }),
  );

  withApiOptions(
    withGrantOptions(
      token
        .command('update <id> <name>')
        .description(
          "replace a token's name and grant with these (what is left out takes create's default); its secret stays",
        ),
    ),
    { account: false },
  ).action(
    verb<CreateFlags & ApiFlags>(async ([id, name], flags) => {
      const f = flags as CreateFlags;
      const api = await connect({ ...flags, account: f.account?.[0] });
      const t = await api.client.request<TokenResult>(
        'PUT',
        api.accountPath(`${tokensPath}/${segment(id!)}`),
        {
          body: createBody(name!, f),
        },
      );
      if (flags.json) return printJson(t);
      status(`Updated admin API token ${t.name} (id ${t.id}; ${(t.permissions ?? []).join(', ')}).`);
    }),
  );

  withApiOptions(
    token
      .command('roll <id>')
      .description('give a token a new secret, printed once on stdout; the old secret stops working at once'),
  ).action(
    verb<ApiFlags>(async ([id], flags) => {
      const api = await connect(flags);
      const value = await api.client.request<string>(
        'PUT',
        api.accountPath(`${tokensPath}/${segment(id!)}/value`),
        { body: {} },
      );
      if (flags.json) return printJson(value);
      status(`Rolled admin API token ${id}. The new secret below is shown once:`);
      print(`${value}\n`);
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
