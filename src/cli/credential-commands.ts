/**
 * The credential verbs of `pubsub broker`, wrangler's plus two of ours, over
 * `/client/v4/accounts/{account_id}/pubsub/namespaces/{ns}/brokers/{name}/...`:
 *
 * - `issue` → `GET .../credentials` (a GET that mints, as Cloudflare's): `--number/-n`,
 *   `--type`, `--expiration/--exp`, `--client-id` (hidden alias `--jti`, wrangler's quirk) and
 *   `--topic-acl` (ours; wrangler never sent `topicAcl`, so the server's default `#` applied).
 * - `revoke`, `unrevoke` → `POST|DELETE .../revocations?jti=a,b`; `show-revocations` → GET.
 * - `public-keys` → `GET .../publickeys`; `rotate-keys` → `POST .../publickeys/rotate` (ours),
 *   which asks first like delete: the retired key's tokens stop connecting.
 *
 * Tokens are secrets, so `issue` prints them on stdout only (a table, or the API's map with
 * `--json`); the claims shown beside them (jti, exp) are read from the token's payload, which
 * is not encrypted, not verified: the server that just signed it is the one we asked.
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import { brokerPath, type NamespaceFlag, withNamespace } from './broker-commands.ts';
import { UsageError } from './cli-error.ts';
import { type ApiFlags, connect } from './connection.ts';
import { print, printJson, status, table } from './output.ts';
import { confirm, durationArgument, upperCaseChoice, verb, withApiOptions, withYes } from './verb.ts';

/** Cloudflare's documented ceiling of tokens per `credentials` call (the server enforces it too). */
const MAX_TOKENS_PER_CALL = 100;
/** The API's `expiration` for "no `exp` claim", even when the broker has an expiration. */
const NO_EXPIRY = -1;
const CREDENTIAL_TYPES = ['TOKEN'] as const;

interface IssueFlags extends ApiFlags, NamespaceFlag {
  number?: number;
  type: string;
  expiration?: number;
  exp?: number;
  clientId?: string[];
  /** wrangler's alias of --client-id (not a token id here). */
  jti?: string[];
  topicAcl?: string[];
}

interface JtiFlags extends ApiFlags, NamespaceFlag {
  jti: string[];
}

interface Jwk {
  kid?: string;
  kty?: string;
  crv?: string;
  alg?: string;
  use?: string;
  x?: string;
}

/** `-n`: a whole number of tokens, 1..100. */
function tokenCount(value: string): number {
  const count = /^\s*\d+\s*$/.test(value) ? Number(value) : Number.NaN;
  if (!(count >= 1 && count <= MAX_TOKENS_PER_CALL))
    throw new InvalidArgumentError(`must be a whole number from 1 to ${MAX_TOKENS_PER_CALL}`);
  return count;
}

/** `--expiration`: a duration in seconds, or `none`/`-1` for tokens without `exp`. */
function expirationArgument(value: string): number {
  const text = value.trim().toLowerCase();
  if (text === 'none' || text === '-1') return NO_EXPIRY;
  const seconds = durationArgument(value);
  if (seconds === 0)
    throw new InvalidArgumentError('0 would expire at once: give a duration, or none (-1) for no expiry');
  return seconds;
}

/** Token ids from repeated and comma-separated values (`--jti a,b c`), as the API reads them. */
function jtisOf(values: readonly string[]): string[] {
  const jtis = values
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter((v) => v !== '');
  if (jtis.length === 0) throw new UsageError('--jti: give at least one token id');
  return jtis;
}

/** The unverified claims of a JWT (for display), or {} when it is not one. */
function claimsOf(jwt: string): { jti?: unknown; exp?: unknown } {
  try {
    return JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8'));
  } catch {
    return {};
  }
}

const expiresAt = (exp: unknown): string =>
  typeof exp === 'number' ? new Date(exp * 1000).toISOString().replace(/\.000Z$/, 'Z') : 'never';

function keysTable(keys: readonly Jwk[]): string {
  return table(
    ['KID', 'ALG', 'CRV', 'USE', 'SIGNS NEW TOKENS'],
    keys.map((k, i) => [
      k.kid ?? '-',
      k.alg ?? '-',
      k.crv ?? '-',
      k.use ?? '-',
      i === keys.length - 1 ? 'yes' : 'no',
    ]),
  );
}

const plural = (n: number, one: string): string => `${n} ${one}${n === 1 ? '' : 's'}`;

/** Adds issue, revoke, unrevoke, show-revocations, public-keys and rotate-keys to `broker`. */
export function addCredentialCommands(broker: Command): void {
  withApiOptions(
    withNamespace(
      broker
        .command('issue <name>')
        .description('issue client tokens (JWTs): each is the MQTT password of one client id')
        .option(
          '-n, --number <count>',
          `how many tokens, with generated client ids (1..${MAX_TOKENS_PER_CALL}; default 1)`,
          tokenCount,
        )
        .addOption(upperCaseChoice('--type <type>', 'credential type', CREDENTIAL_TYPES).default('TOKEN'))
        .option(
          '--expiration <duration>',
          "token lifetime (also --exp): 90, 30m, 12h, 7d...; the broker's expiration wins when shorter; none or -1: no expiry",
          expirationArgument,
        )
        .addOption(new Option('--exp <duration>').argParser(expirationArgument).hideHelp())
        .option(
          '--client-id <id...>',
          'issue one token for each of these client ids instead of generated ones',
        )
        // wrangler's alias of --client-id; kept so that its scripts work (see docs/cli.md).
        .addOption(new Option('--jti <id...>').hideHelp())
        .option(
          '--topic-acl <rule...>',
          // biome-ignore lint/suspicious/noTemplateCurlyInString: the ACL placeholder is literal text.
          "what the tokens may do: pub:<filter>, sub:<filter>, <filter> (both); ${clientId} is substituted (default '#': everything)",
        ),
    ),
  ).action(
    verb<IssueFlags>(async ([name], flags) => {
      if (flags.expiration !== undefined && flags.exp !== undefined)
        throw new UsageError('give --expiration or --exp, not both');
      const expiration = flags.expiration ?? flags.exp;
      const clientIds = [...(flags.clientId ?? []), ...(flags.jti ?? [])];
      if (clientIds.some((id) => id === '')) throw new UsageError('--client-id: a client id cannot be empty');
      if (clientIds.length > MAX_TOKENS_PER_CALL)
        throw new UsageError(`--client-id: at most ${MAX_TOKENS_PER_CALL} client ids per call`);
      if (clientIds.length > 0 && flags.number !== undefined && flags.number !== clientIds.length)
        throw new UsageError(
          `--number ${flags.number} with ${plural(clientIds.length, 'client id')}: with --client-id one token is issued per id; leave out --number`,
        );
      const query: Record<string, string | string[]> = { type: flags.type };
      if (clientIds.length > 0) query.clientid = clientIds;
      else query.number = String(flags.number ?? 1);
      if (expiration !== undefined) query.expiration = String(expiration);
      if (flags.topicAcl !== undefined) query.topicAcl = flags.topicAcl;

      const api = await connect(flags);
      const tokens = await api.client.request<Record<string, string>>(
        'GET',
        api.accountPath(`${brokerPath(flags.namespace, name!)}/credentials`),
        { query },
      );
      if (flags.json) return printJson(tokens);
      const entries = Object.entries(tokens);
      status(
        `Issued ${plural(entries.length, 'token')} for broker ${name} in namespace ${flags.namespace}. Each token is a secret: the MQTT password of its client id.`,
      );
      print(
        table(
          ['CLIENT ID', 'JTI', 'EXPIRES', 'TOKEN'],
          entries.map(([clientId, jwt]) => {
            const claims = claimsOf(jwt);
            return [clientId, typeof claims.jti === 'string' ? claims.jti : '-', expiresAt(claims.exp), jwt];
          }),
        ),
      );
    }),
  );

  withApiOptions(
    withNamespace(
      broker
        .command('revoke <name>')
        .description(
          'revoke tokens by id: they stop connecting, and clients connected with them are disconnected',
        )
        .requiredOption(
          '--jti <id...>',
          'token ids (the JTI column of `broker issue`), space- or comma-separated',
        ),
    ),
  ).action(
    verb<JtiFlags>(async ([name], flags) => {
      const jtis = jtisOf(flags.jti);
      const api = await connect(flags);
      const result = await api.client.request(
        'POST',
        api.accountPath(`${brokerPath(flags.namespace, name!)}/revocations`),
        { query: { jti: jtis.join(',') } },
      );
      if (flags.json) return printJson(result);
      status(
        `Revoked ${plural(jtis.length, 'token')} of broker ${name} in namespace ${flags.namespace}: clients connected with them were disconnected (0x98).`,
      );
    }),
  );

  withApiOptions(
    withNamespace(
      broker
        .command('unrevoke <name>')
        .description('take tokens off the revocation list (an expired token stays invalid)')
        .requiredOption('--jti <id...>', 'token ids, space- or comma-separated'),
    ),
  ).action(
    verb<JtiFlags>(async ([name], flags) => {
      const jtis = jtisOf(flags.jti);
      const api = await connect(flags);
      const result = await api.client.request(
        'DELETE',
        api.accountPath(`${brokerPath(flags.namespace, name!)}/revocations`),
        { query: { jti: jtis.join(',') } },
      );
      if (flags.json) return printJson(result);
      status(
        `Unrevoked ${plural(jtis.length, 'token')} of broker ${name} in namespace ${flags.namespace}: they connect again until they expire.`,
      );
    }),
  );

  withApiOptions(
    withNamespace(broker.command('show-revocations <name>').description("list a broker's revoked token ids")),
  ).action(
    verb<ApiFlags & NamespaceFlag>(async ([name], flags) => {
      const api = await connect(flags);
      const jtis = await api.client.request<string[]>(
        'GET',
        api.accountPath(`${brokerPath(flags.namespace, name!)}/revocations`),
      );
      if (flags.json) return printJson(jtis);
      if (jtis.length === 0)
        return status(`No revoked tokens in broker ${name} of namespace ${flags.namespace}.`);
      print(
        table(
          ['JTI'],
          jtis.map((jti) => [jti]),
        ),
      );
    }),
  );

  withApiOptions(
    withNamespace(
      broker
        .command('public-keys <name>')
        .description(
          "show the broker's public keys (JWKS): they verify its tokens and on-publish signatures",
        ),
    ),
  ).action(
    verb<ApiFlags & NamespaceFlag>(async ([name], flags) => {
      const api = await connect(flags);
      const jwks = await api.client.request<{ keys: Jwk[] }>(
        'GET',
        api.accountPath(`${brokerPath(flags.namespace, name!)}/publickeys`),
      );
      if (flags.json) return printJson(jwks);
      print(keysTable(jwks.keys));
    }),
  );

  withApiOptions(
    withYes(
      withNamespace(
        broker
          .command('rotate-keys <name>')
          .description(
            'retire the oldest signing key and add a new one: tokens signed by the retired key stop working',
          ),
      ),
    ),
  ).action(
    verb<ApiFlags & NamespaceFlag & { yes?: boolean }>(async ([name], flags) => {
      const api = await connect(flags);
      const keysPath = api.accountPath(`${brokerPath(flags.namespace, name!)}/publickeys`);
      const before = await api.client.request<{ keys: Jwk[] }>('GET', keysPath);
      const retiring = before.keys[0]?.kid ?? 'its oldest key';
      await confirm(
        `Rotate the keys of broker ${name} in namespace ${flags.namespace} (tokens signed by the retired key ${retiring} will be refused)`,
        flags.yes,
      );
      const after = await api.client.request<{ keys: Jwk[] }>('POST', `${keysPath}/rotate`);
      if (flags.json) return printJson(after);
      const added = after.keys.at(-1)?.kid ?? '-';
      status(
        `Rotated the keys of broker ${name} in namespace ${flags.namespace}: retired ${retiring}, added ${added} (it signs new tokens).`,
      );
      print(keysTable(after.keys));
    }),
  );
}
