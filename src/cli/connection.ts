/**
 * Where a management verb finds the admin API, its token and the account, so that on the
 * machine running `pubsub serve` nothing needs setting up, and elsewhere two variables do.
 * Each value is taken from the first source that has one (flags win over the environment,
 * which wins over files):
 *
 * - URL: `--url`, `PUBSUB_API_URL`, `<data-dir>/api-url` (written by `serve` at each start),
 *   then `http://127.0.0.1:8080` (serve's default).
 * - Token: `--token-file <file>`, `PUBSUB_API_TOKEN`, `<data-dir>/admin-token` (written by
 *   `serve` at the first start, mode 0600). There is no `--token <secret>` on purpose: argv is
 *   readable by every user of the machine (ps) and lands in shell history.
 * - Data dir: `--data-dir`, `PUBSUB_DATA_DIR`, then `./data`, as for `serve`.
 * - Account: `--account`, `PUBSUB_ACCOUNT_ID`, else the first account `GET /client/v4/accounts`
 *   lists for the token.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { OPTIONS } from '../config.ts';
import { AdminClient, segment } from './api-client.ts';
import { CliError, UsageError } from './cli-error.ts';

/** The flags every management verb takes (see withApiOptions). */
export interface ApiFlags {
  url?: string;
  dataDir?: string;
  tokenFile?: string;
  account?: string;
  json?: boolean;
}

type Env = Record<string, string | undefined>;

const DEFAULT_URL = `http://127.0.0.1:${OPTIONS.httpPort.default}`;
const ACCOUNT_ID = /^[0-9a-f]{32}$/;

/** A client bound to an account: what every verb works with. */
export interface Api {
  readonly client: AdminClient;
  readonly accountId: string;
  /** `/client/v4/accounts/{account_id}` followed by `path`. */
  accountPath(path: string): string;
}

/** Reads a file's first line, or undefined when the file does not exist. */
export function readLine(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8').split('\n')[0]!.trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CliError(`cannot read ${file}: ${(err as Error).message}`);
  }
}

const nonEmpty = (value: string | undefined): string | undefined =>
  value === undefined || value.trim() === '' ? undefined : value.trim();

function resolveUrl(flags: ApiFlags, env: Env, dataDir: string): { url: string; source: string } {
  let url: string | undefined;
  let source: string;
  if ((url = nonEmpty(flags.url)) !== undefined) source = '--url';
  else if ((url = nonEmpty(env.PUBSUB_API_URL)) !== undefined) source = 'PUBSUB_API_URL';
  else if ((url = nonEmpty(readLine(join(dataDir, 'api-url')))) !== undefined)
    source = `from ${join(dataDir, 'api-url')}`;
  else {
    url = DEFAULT_URL;
    source = 'the default';
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`${source}: not a URL: ${url}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    throw new UsageError(`${source}: the admin API URL must be http:// or https://, got ${url}`);
  return { url: url.replace(/\/+$/, ''), source };
}

function resolveToken(flags: ApiFlags, env: Env, dataDir: string): { token: string; source: string } {
  if (flags.tokenFile !== undefined) {
    const token = nonEmpty(readLine(flags.tokenFile));
    if (token === undefined) throw new CliError(`--token-file: ${flags.tokenFile} is missing or empty`);
    return { token, source: flags.tokenFile };
  }
  const fromEnv = nonEmpty(env.PUBSUB_API_TOKEN);
  if (fromEnv !== undefined) return { token: fromEnv, source: 'PUBSUB_API_TOKEN' };
  const file = join(dataDir, 'admin-token');
  const fromFile = nonEmpty(readLine(file));
  if (fromFile !== undefined) return { token: fromFile, source: file };
  throw new CliError(
    `no admin API token: set PUBSUB_API_TOKEN (or pass --token-file), or run where the server's data directory is (${file} not found; --data-dir or PUBSUB_DATA_DIR to point at it)`,
  );
}

/** Resolves URL and token, then the account (asking the API when none is given). */
export async function connect(flags: ApiFlags, env: Env = process.env): Promise<Api> {
  const client = connectWithoutAccount(flags, env);
  const accountId = await resolveAccount(client, flags, env);
  return {
    client,
    accountId,
    accountPath: (path) => `/client/v4/accounts/${segment(accountId)}${path}`,
  };
}

async function resolveAccount(client: AdminClient, flags: ApiFlags, env: Env): Promise<string> {
  const given = nonEmpty(flags.account) ?? nonEmpty(env.PUBSUB_ACCOUNT_ID);
  if (given !== undefined) {
    if (!ACCOUNT_ID.test(given))
      throw new UsageError(`account id must be 32 lowercase hex digits, got ${given}`);
    return given;
  }
  const accounts = await client.request<{ id: string }[]>('GET', '/client/v4/accounts');
  const first = accounts[0];
  if (first === undefined) throw new CliError('the API lists no account for this token');
  return first.id;
}

/** The server's data directory: `--data-dir`, PUBSUB_DATA_DIR, then serve's default. */
export function resolveDataDir(flags: Pick<ApiFlags, 'dataDir'>, env: Env = process.env): string {
  return nonEmpty(flags.dataDir) ?? nonEmpty(env[OPTIONS.dataDir.env]) ?? OPTIONS.dataDir.default;
}

/** A client without an account (for `account list`): URL and token only. */
export function connectWithoutAccount(flags: ApiFlags, env: Env = process.env): AdminClient {
  const dataDir = resolveDataDir(flags, env);
  const { url, source } = resolveUrl(flags, env, dataDir);
  const { token, source: tokenSource } = resolveToken(flags, env, dataDir);
  return new AdminClient({ url, token, urlSource: source, tokenSource });
}
