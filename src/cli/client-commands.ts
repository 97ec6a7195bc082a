/**
 * The client verbs of `pubsub broker` (ours), over
 * `/client/v4/accounts/{account_id}/pubsub/namespaces/{ns}/brokers/{name}/clients`:
 *
 * - `clients <broker>` → `GET .../clients` (`--prefix` → `client_id_prefix`, `--page`): a table
 *   of connected clients and offline persistent sessions, one API page (up to 1000) at a time.
 * - `client <broker> <clientId>` → `GET .../client?client_id=` (the query form carries any
 *   client id, `/` and `..` included): the client with its subscriptions.
 * - `kick <broker> <clientId>` → `DELETE .../clients?client_id=` (the query form carries any
 *   client id): v5 clients get DISCONNECT 0x98; `--discard-session` ends the session too, and
 *   asks first, like delete, since its queued messages are lost.
 */
import { type Command, InvalidArgumentError } from 'commander';
import { brokerPath, type NamespaceFlag, withNamespace } from './broker-commands.ts';
import { type ApiFlags, connect } from './connection.ts';
import { fields, print, printJson, status, table, text, when } from './output.ts';
import { confirm, verb, withApiOptions, withYes } from './verb.ts';

interface Subscription {
  filter: string;
  qos: number;
  no_local: boolean;
  retain_as_published: boolean;
  retain_handling: number;
  subscription_id: number | null;
  share_group: string | null;
}

interface Client {
  client_id: string;
  connected: boolean;
  transport: string | null;
  remote_address: string | null;
  remote_port: number | null;
  protocol_version: number | null;
  keep_alive: number | null;
  connected_at: string | null;
  subscription_count: number;
  inflight: number;
  queued: number;
  session_expiry_interval: number;
  session_expires_at: string | null;
  subscriptions?: Subscription[];
}

interface ListFlags extends ApiFlags, NamespaceFlag {
  prefix?: string;
  page?: number;
}

/** No expiry: the v5 Session Expiry Interval 0xFFFFFFFF. */
const NEVER = 0xffffffff;

const PROTOCOLS: Record<number, string> = { 3: '3.1', 4: '3.1.1', 5: '5.0' };

/** `--page`: a whole number from 1. */
export function pageArgument(value: string): number {
  const page = /^\s*\d+\s*$/.test(value) ? Number(value) : Number.NaN;
  if (!(page >= 1)) throw new InvalidArgumentError('must be a whole number from 1');
  return page;
}

const clientsPath = (ns: string, broker: string): string => `${brokerPath(ns, broker)}/clients`;

const protocol = (c: Client): string =>
  c.protocol_version === null ? '-' : (PROTOCOLS[c.protocol_version] ?? String(c.protocol_version));
const address = (c: Client): string =>
  c.remote_address === null ? '-' : `${c.remote_address}:${c.remote_port}`;

function sessionExpiry(c: Client): string {
  if (c.session_expiry_interval === 0) return 'with the connection';
  if (c.session_expiry_interval === NEVER) return 'never';
  return `${c.session_expiry_interval} s`;
}

function describeClient(c: Client): string {
  const out = fields([
    ['client id', c.client_id],
    ['connected', c.connected ? 'yes' : 'no'],
    ['transport', text(c.transport)],
    ['address', address(c)],
    ['mqtt', protocol(c)],
    ['keep alive', c.keep_alive === null ? '-' : `${c.keep_alive} s`],
    ['since', when(c.connected_at)],
    ['session expiry', sessionExpiry(c)],
    ['session expires', when(c.session_expires_at)],
    ['in flight', String(c.inflight)],
    ['queued', String(c.queued)],
    ['subscriptions', String(c.subscription_count)],
  ]);
  const subs = c.subscriptions ?? [];
  if (subs.length === 0) return out;
  return `${out}\n${table(
    ['FILTER', 'QOS', 'NO LOCAL', 'RETAIN AS PUBLISHED', 'RETAIN HANDLING', 'ID', 'SHARE GROUP'],
    subs.map((s) => [
      s.filter,
      String(s.qos),
      s.no_local ? 'yes' : 'no',
      s.retain_as_published ? 'yes' : 'no',
      String(s.retain_handling),
      text(s.subscription_id),
      text(s.share_group),
    ]),
  )}`;
}

export function addClientCommands(broker: Command): void {
  withApiOptions(
    withNamespace(
      broker
        .command('clients <broker>')
        .description("list a broker's connected clients and offline persistent sessions")
        .option('--prefix <text>', 'only client ids starting with this')
        .option('--page <n>', 'the page of 1000 to show (default 1)', pageArgument),
    ),
  ).action(
    verb<ListFlags>(async ([name], flags) => {
      const api = await connect(flags);
      const query: Record<string, string> = {};
      if (flags.prefix !== undefined) query.client_id_prefix = flags.prefix;
      if (flags.page !== undefined) query.page = String(flags.page);
      const { result, resultInfo } = await api.client.requestList<Client>(
        'GET',
        api.accountPath(clientsPath(flags.namespace, name!)),
        { query },
      );
      if (flags.json) return printJson(result);
      const total = resultInfo.total_count ?? result.length;
      if (result.length === 0)
        return status(`No clients on broker ${name}${flags.page ? ' on that page' : ''}.`);
      print(
        table(
          [
            'CLIENT ID',
            'CONNECTED',
            'TRANSPORT',
            'ADDRESS',
            'MQTT',
            'KEEP ALIVE',
            'SINCE',
            'SUBS',
            'IN FLIGHT',
            'QUEUED',
          ],
          result.map((c) => [
            c.client_id,
            c.connected ? 'yes' : 'no',
            text(c.transport),
            address(c),
            protocol(c),
            c.keep_alive === null ? '-' : String(c.keep_alive),
            when(c.connected_at),
            String(c.subscription_count),
            String(c.inflight),
            String(c.queued),
          ]),
        ),
      );
      if (total > result.length)
        status(
          `Showing ${result.length} of ${total} clients (page ${resultInfo.page ?? 1}); use --page or --prefix.`,
        );
    }),
  );

  withApiOptions(
    withNamespace(
      broker.command('client <broker> <clientId>').description('show one client with its subscriptions'),
    ),
  ).action(
    verb<ApiFlags & NamespaceFlag>(async ([name, clientId], flags) => {
      const api = await connect(flags);
      const c = await api.client.request<Client>(
        'GET',
        api.accountPath(`${brokerPath(flags.namespace, name!)}/client`),
        { query: { client_id: clientId! } },
      );
      if (flags.json) return printJson(c);
      print(describeClient(c));
    }),
  );

  withApiOptions(
    withYes(
      withNamespace(
        broker
          .command('kick <broker> <clientId>')
          .description('disconnect a client (MQTT 5: DISCONNECT 0x98 administrative action)')
          .option('--discard-session', 'also end its session: subscriptions and queued messages are dropped'),
      ),
    ),
  ).action(
    verb<ApiFlags & NamespaceFlag & { discardSession?: boolean; yes?: boolean }>(
      async ([name, clientId], flags) => {
        if (flags.discardSession === true)
          await confirm(
            `Disconnect ${clientId} from broker ${name} and end its session (its queued messages are lost)`,
            flags.yes,
          );
        const api = await connect(flags);
        const query: Record<string, string> = { client_id: clientId! };
        if (flags.discardSession === true) query.discard_session = 'true';
        const done = await api.client.request<{ disconnected: boolean; session_discarded: boolean }>(
          'DELETE',
          api.accountPath(clientsPath(flags.namespace, name!)),
          { query },
        );
        if (flags.json) return printJson(done);
        const what = [
          done.disconnected ? 'disconnected' : 'not connected',
          done.session_discarded ? 'session ended' : '',
        ]
          .filter((w) => w !== '')
          .join('; ');
        status(`Client ${clientId} on broker ${name}: ${what}.`);
      },
    ),
  );
}
