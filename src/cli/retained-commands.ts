/**
 * The retained-message verbs of `pubsub broker` (ours), over
 * `/client/v4/accounts/{account_id}/pubsub/namespaces/{ns}/brokers/{name}/retained`:
 *
 * - `retained <broker>` → `GET .../retained?filter=` (`--filter`, default `#`; `--payload` with
 *   `--payload-bytes`; `--page`): a table of the matching messages, one API page (up to 1000)
 *   at a time. A payload is shown as text when it is printable UTF-8, else as `base64:...`.
 * - `retained-delete <broker> <topic>` → `DELETE .../retained?topic=` (the query form carries
 *   any topic, `/` included). Asks first, like delete.
 */
import { type Command, InvalidArgumentError } from 'commander';
import { brokerPath, type NamespaceFlag, withNamespace } from './broker-commands.ts';
import { pageArgument } from './client-commands.ts';
import { type ApiFlags, connect } from './connection.ts';
import { print, printJson, status, table, when } from './output.ts';
import { confirm, verb, withApiOptions, withYes } from './verb.ts';

interface Retained {
  topic: string;
  qos: number;
  payload_size: number;
  payload?: string;
  payload_truncated?: boolean;
  stored_at: string;
  expires_at: string | null;
}

interface RetainedFlags extends ApiFlags, NamespaceFlag {
  filter: string;
  payload?: boolean;
  payloadBytes?: number;
  page?: number;
}

const retainedPath = (ns: string, broker: string): string => `${brokerPath(ns, broker)}/retained`;

/** Printable UTF-8 as it is; anything else as base64. */
function payloadCell(m: Retained): string {
  if (m.payload === undefined) return '-';
  const bytes = Buffer.from(m.payload, 'base64');
  const asText = bytes.toString('utf8');
  const printable = Buffer.from(asText, 'utf8').equals(bytes) && !/[\u0000-\u001f\u007f]/.test(asText);
  const shown = printable ? asText : `base64:${m.payload}`;
  return m.payload_truncated === true ? `${shown}...` : shown;
}

function payloadBytesArgument(value: string): number {
  const n = /^\s*\d+\s*$/.test(value) ? Number(value) : Number.NaN;
  if (!(n >= 1 && n <= 65_536)) throw new InvalidArgumentError('must be a whole number from 1 to 65536');
  return n;
}

export function addRetainedCommands(broker: Command): void {
  withApiOptions(
    withNamespace(
      broker
        .command('retained <broker>')
        .description('list the retained messages matching an MQTT topic filter')
        .option('--filter <filter>', "MQTT topic filter (quote it: '#' starts a shell comment)", '#')
        .option('--payload', 'show the payloads (the first --payload-bytes of each)')
        .option(
          '--payload-bytes <n>',
          'with --payload: at most this many bytes of each, 1..65536 (default 1024)',
          payloadBytesArgument,
        )
        .option('--page <n>', 'the page of 1000 to show (default 1)', pageArgument),
    ),
  ).action(
    verb<RetainedFlags>(async ([name], flags) => {
      const api = await connect(flags);
      const query: Record<string, string> = { filter: flags.filter };
      if (flags.payload === true) query.payload = 'true';
      if (flags.payloadBytes !== undefined) query.payload_bytes = String(flags.payloadBytes);
      if (flags.page !== undefined) query.page = String(flags.page);
      const { result, resultInfo } = await api.client.requestList<Retained>(
        'GET',
        api.accountPath(retainedPath(flags.namespace, name!)),
        { query },
      );
      if (flags.json) return printJson(result);
      if (result.length === 0) return status(`No retained messages match ${flags.filter} on broker ${name}.`);
      const headers = ['TOPIC', 'QOS', 'SIZE', 'STORED', 'EXPIRES'];
      print(
        table(
          flags.payload === true ? [...headers, 'PAYLOAD'] : headers,
          result.map((m) => {
            const cells = [
              m.topic,
              String(m.qos),
              String(m.payload_size),
              when(m.stored_at),
              when(m.expires_at),
            ];
            return flags.payload === true ? [...cells, payloadCell(m)] : cells;
          }),
        ),
      );
      if (resultInfo.has_more === true)
        status(`More on page ${(resultInfo.page ?? 1) + 1} (--page), or narrow --filter.`);
    }),
  );

  withApiOptions(
    withYes(
      withNamespace(
        broker
          .command('retained-delete <broker> <topic>')
          .description('delete the retained message of a topic (subscribers are sent nothing)'),
      ),
    ),
  ).action(
    verb<ApiFlags & NamespaceFlag & { yes?: boolean }>(async ([name, topic], flags) => {
      await confirm(`Delete the retained message of ${topic} on broker ${name}`, flags.yes);
      const api = await connect(flags);
      await api.client.request<null>('DELETE', api.accountPath(retainedPath(flags.namespace, name!)), {
        query: { topic: topic! },
      });
      if (flags.json) return printJson(null);
      status(`Deleted the retained message of ${topic} on broker ${name}.`);
    }),
  );
}
