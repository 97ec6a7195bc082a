/**
 * `pubsub broker create|update|list|describe|delete`, wrangler's verbs, over
 * `/client/v4/accounts/{account_id}/pubsub/namespaces/{ns}/brokers[/{name}]`.
 * `--namespace/--ns` is required on every verb, as in wrangler. `update` sends a PATCH with only
 * the flags given: `--expiration none` clears the expiration and `--on-publish-url ''` the hook.
 *
 * The credential verbs (issue, revoke, unrevoke, show-revocations, public-keys) hang off the
 * same `broker` command: addBrokerCommands returns it so their module can add them, reusing
 * brokerPath and withNamespace.
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
// The module itself, not the store's index: the CLI must not load the database code.
import { BROKER_LIMIT_FIELDS, RATE_LIMIT_ACTIONS } from '../store/broker-limits.ts';
import { segment } from './api-client.ts';
import { UsageError } from './cli-error.ts';
import { type ApiFlags, connect } from './connection.ts';
import { namespacePath } from './namespace-commands.ts';
import { expiration, fields, print, printJson, status, table, text, when } from './output.ts';
import { confirm, durationArgument, upperCaseChoice, verb, withApiOptions, withYes } from './verb.ts';

export const AUTH_TYPES = ['TOKEN', 'MTLS', 'MTLS_AND_TOKEN', 'NONE'] as const;

export interface BrokerResult {
  id: string;
  name: string;
  description?: string;
  authType?: string;
  auth_type?: string;
  created_on?: string;
  modified_on?: string;
  expiration?: number | null;
  endpoint?: string | null;
  endpoints?: Record<string, string>;
  mqtt_username?: string;
  on_publish?: { url?: string | null; policy?: string; timeout_ms?: number | null };
  sys_topics?: boolean;
  mtls_client_id_pattern?: string | null;
  limits?: Record<string, number | string | null>;
}

export interface NamespaceFlag {
  namespace: string;
}

interface BrokerFlags extends ApiFlags, NamespaceFlag {
  description?: string;
  /** Seconds, or `none` (update only: clears it). */
  expiration?: number | 'none';
  onPublishUrl?: string;
  onPublishPolicy?: string;
  /** Milliseconds, or `default` (update only: back to the server's --hook-timeout-ms). */
  onPublishTimeout?: number | 'default';
  authType?: string;
  sysTopics?: 'true' | 'false';
  /** `''` (update only: back to the server's --mtls-client-id-pattern). */
  mtlsClientIdPattern?: string;
  /** `--limit name=value`, repeated: the broker's own limits to set (null: the server's flag). */
  limit?: Record<string, number | string | null>;
}

export const brokersPath = (ns: string): string => `${namespacePath(ns)}/brokers`;
export const brokerPath = (ns: string, name: string): string => `${brokersPath(ns)}/${segment(name)}`;

/** Adds the required `--namespace/--ns <name>` flag. */
export function withNamespace(command: Command): Command {
  return command.requiredOption('--ns, --namespace <name>', 'the namespace the broker is in');
}

/** Adds the broker field flags of create and update. */
function withBrokerFields(command: Command, update: boolean): Command {
  return command
    .option('--description <text>', 'a description')
    .option(
      '--expiration <duration>',
      update
        ? 'default lifetime of issued credentials: 90, 30m, 12h, 7d, 1w, 1month, 1year; none clears it'
        : 'default lifetime of issued credentials: 90, 30m, 12h, 7d, 1w, 1month, 1year',
      update
        ? // Not null: commander turns a parser's null into ''. brokerBody maps 'none' to null.
          (value: string) => (value.trim().toLowerCase() === 'none' ? 'none' : durationArgument(value))
        : durationArgument,
    )
    .option(
      '--on-publish-url <url>',
      update
        ? "URL the broker calls for each message published; '' removes it"
        : 'URL the broker calls for each message published',
    )
    .addOption(
      new Option(
        '--on-publish-policy <policy>',
        'when the on-publish hook fails: fail-closed drops the messages, fail-open forwards them unchanged',
      ).choices(['fail-closed', 'fail-open']),
    )
    .option(
      '--on-publish-timeout <ms>',
      update
        ? "webhook timeout in milliseconds; default: the server's --hook-timeout-ms"
        : 'webhook timeout in milliseconds',
      (value: string) => {
        if (update && value.trim().toLowerCase() === 'default') return 'default';
        const ms = Number(value);
        if (!Number.isInteger(ms) || ms < 1 || ms > 600_000)
          throw new InvalidArgumentError('milliseconds between 1 and 600000');
        return ms;
      },
    )
    .addOption(upperCaseChoice('--auth-type <type>', 'how clients authenticate', AUTH_TYPES))
    .addOption(
      new Option(
        '--sys-topics <bool>',
        'whether the broker publishes its $SYS/broker/... statistics topics (default true)',
      ).choices(['true', 'false']),
    )
    .option(
      '--mtls-client-id-pattern <regex>',
      update
        ? "certificate brokers: regular expression the client certificate's CN must match, the client id its first group; '' returns to the server's --mtls-client-id-pattern"
        : "certificate brokers: regular expression the client certificate's CN must match, the client id its first group (default: the server's --mtls-client-id-pattern)",
    )
    .option(
      '--limit <name=value>',
      `one of the broker's own limits (repeatable; docs/limits.md): ${[...BROKER_LIMIT_FIELDS, 'rate_limit_action'].join(', ')}; a value of default returns to the server's flag`,
      limitArgument,
    );
}

/** Parses one `--limit name=value` into the limits gathered so far. */
function limitArgument(
  arg: string,
  previous: Record<string, number | string | null> | undefined,
): Record<string, number | string | null> {
  const eq = arg.indexOf('=');
  const name = arg.slice(0, eq).trim().replaceAll('-', '_');
  const raw = arg.slice(eq + 1).trim();
  const limits = { ...previous };
  if (eq < 0 || raw === '') throw new InvalidArgumentError('expected name=value, e.g. max_connections=1000');
  if (raw.toLowerCase() === 'default') limits[name] = null;
  else if (name === 'rate_limit_action') {
    if (!(RATE_LIMIT_ACTIONS as readonly string[]).includes(raw))
      throw new InvalidArgumentError(
        `rate_limit_action is one of ${RATE_LIMIT_ACTIONS.join(', ')} or default`,
      );
    limits[name] = raw;
  } else if ((BROKER_LIMIT_FIELDS as readonly string[]).includes(name)) {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 0)
      throw new InvalidArgumentError(`${name} takes a whole number or default`);
    limits[name] = n;
  } else
    throw new InvalidArgumentError(
      `unknown limit ${name}; one of ${[...BROKER_LIMIT_FIELDS, 'rate_limit_action'].join(', ')}`,
    );
  return limits;
}

/** The request body of create/update: only the flags given. */
function brokerBody(flags: BrokerFlags): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (flags.description !== undefined) body.description = flags.description;
  if (flags.expiration !== undefined) body.expiration = flags.expiration === 'none' ? null : flags.expiration;
  const onPublish: Record<string, unknown> = {};
  if (flags.onPublishUrl !== undefined) onPublish.url = flags.onPublishUrl === '' ? null : flags.onPublishUrl;
  if (flags.onPublishPolicy !== undefined) onPublish.policy = flags.onPublishPolicy;
  if (flags.onPublishTimeout !== undefined)
    onPublish.timeout_ms = flags.onPublishTimeout === 'default' ? null : flags.onPublishTimeout;
  if (Object.keys(onPublish).length > 0) body.on_publish = onPublish;
  if (flags.authType !== undefined) body.authType = flags.authType;
  if (flags.sysTopics !== undefined) body.sys_topics = flags.sysTopics === 'true';
  if (flags.mtlsClientIdPattern !== undefined)
    body.mtls_client_id_pattern = flags.mtlsClientIdPattern === '' ? null : flags.mtlsClientIdPattern;
  if (flags.limit !== undefined) body.limits = flags.limit;
  return body;
}

function describeBroker(b: BrokerResult, ns: string): string {
  const endpoints = Object.entries(b.endpoints ?? {});
  return fields([
    ['name', b.name],
    ['namespace', ns],
    ['id', b.id],
    ['auth type', text(b.authType ?? b.auth_type)],
    ['expiration', expiration(b.expiration)],
    ['on publish', text(b.on_publish?.url)],
    ...(b.on_publish?.url
      ? ([
          ['on publish policy', text(b.on_publish.policy)],
          [
            'on publish timeout',
            b.on_publish.timeout_ms == null ? 'server default' : `${b.on_publish.timeout_ms} ms`,
          ],
        ] as const)
      : []),
    ...(b.mtls_client_id_pattern != null ? ([['client id pattern', b.mtls_client_id_pattern]] as const) : []),
    ['endpoint', text(b.endpoint)],
    ...endpoints.map(([scheme, url]) => [`endpoint (${scheme})`, url] as const),
    ['mqtt user name', text(b.mqtt_username)],
    ['$SYS topics', b.sys_topics === false ? 'off' : 'on'],
    ['limits', ownLimits(b.limits)],
    ['description', text(b.description)],
    ['created', when(b.created_on)],
    ['modified', when(b.modified_on)],
  ]);
}

/** The limits a broker sets itself, `name=value, ...`; the rest follow the server's flags. */
function ownLimits(limits: BrokerResult['limits']): string {
  const own = Object.entries(limits ?? {}).filter(([, value]) => value !== null);
  return own.length === 0 ? 'server defaults' : own.map(([name, value]) => `${name}=${value}`).join(', ');
}

export function addBrokerCommands(program: Command): Command {
  const broker = program.command('broker').description('manage brokers (isolated MQTT topic spaces)');

  withApiOptions(
    withBrokerFields(
      withNamespace(broker.command('create <name>').description('create a broker in a namespace')),
      false,
    ),
  ).action(
    verb<BrokerFlags>(async ([name], flags) => {
      const body: Record<string, unknown> = { name, ...brokerBody(flags) };
      if (flags.onPublishUrl === '') delete (body.on_publish as Record<string, unknown>).url;
      const api = await connect(flags);
      const b = await api.client.request<BrokerResult>(
        'POST',
        api.accountPath(brokersPath(flags.namespace)),
        {
          body,
        },
      );
      if (flags.json) return printJson(b);
      status(`Created broker ${b.name} in namespace ${flags.namespace}.`);
      print(describeBroker(b, flags.namespace));
    }),
  );

  withApiOptions(
    withBrokerFields(
      withNamespace(broker.command('update <name>').description('change a broker (only the flags given)')),
      true,
    ),
  ).action(
    verb<BrokerFlags>(async ([name], flags) => {
      const body = brokerBody(flags);
      if (Object.keys(body).length === 0)
        throw new UsageError(
          'nothing to update: give at least one of --description, --expiration, --on-publish-url, --on-publish-policy, --on-publish-timeout, --auth-type, --mtls-client-id-pattern',
        );
      const api = await connect(flags);
      const b = await api.client.request<BrokerResult>(
        'PATCH',
        api.accountPath(brokerPath(flags.namespace, name!)),
        { body },
      );
      if (flags.json) return printJson(b);
      status(`Updated broker ${b.name} in namespace ${flags.namespace}.`);
      print(describeBroker(b, flags.namespace));
    }),
  );

  withApiOptions(withNamespace(broker.command('list').description('list the brokers of a namespace'))).action(
    verb<BrokerFlags>(async (_args, flags) => {
      const api = await connect(flags);
      const list = await api.client.request<BrokerResult[]>(
        'GET',
        api.accountPath(brokersPath(flags.namespace)),
      );
      if (flags.json) return printJson(list);
      if (list.length === 0) return status(`No brokers in namespace ${flags.namespace}.`);
      print(
        table(
          ['NAME', 'AUTH', 'EXPIRATION', 'ENDPOINT', 'ON PUBLISH'],
          list.map((b) => [
            b.name,
            text(b.authType ?? b.auth_type),
            typeof b.expiration === 'number' ? expiration(b.expiration) : 'none',
            text(b.endpoint),
            text(b.on_publish?.url),
          ]),
        ),
      );
    }),
  );

  withApiOptions(withNamespace(broker.command('describe <name>').description('show one broker'))).action(
    verb<BrokerFlags>(async ([name], flags) => {
      const api = await connect(flags);
      const b = await api.client.request<BrokerResult>(
        'GET',
        api.accountPath(brokerPath(flags.namespace, name!)),
      );
      if (flags.json) return printJson(b);
      print(describeBroker(b, flags.namespace));
    }),
  );

  withApiOptions(
    withYes(
      withNamespace(
        broker
          .command('delete <name>')
          .description('delete a broker: its clients are disconnected, its state dropped'),
      ),
    ),
  ).action(
    verb<BrokerFlags & { yes?: boolean }>(async ([name], flags) => {
      const api = await connect(flags);
      await confirm(
        `Delete broker ${name} in namespace ${flags.namespace} (all existing clients will be disconnected)`,
        flags.yes,
      );
      const result = await api.client.request('DELETE', api.accountPath(brokerPath(flags.namespace, name!)));
      if (flags.json) return printJson(result);
      status(`Deleted broker ${name} from namespace ${flags.namespace}.`);
    }),
  );

  return broker;
}
