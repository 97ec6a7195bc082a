/**
 * `pubsub audit`: the account's audit log (`GET /client/v4/accounts/{account_id}/audit_logs`),
 * newest first, as a table (or the API's entries with `--json`). `--since` takes a time
 * (RFC 3339, a date) or a duration meaning "that long ago" (`1h`, `7d`); `--token` is an API
 * token's id (as `pubsub token list` shows it), never its secret; `--limit` is how many entries
 * (one page of the API, 1..1000).
 */
import { type Command, InvalidArgumentError } from 'commander';
import { parseHumanDuration } from '../duration.ts';
import { type ApiFlags, connect } from './connection.ts';
import { print, printJson, status, table, text, when } from './output.ts';
import { verb, withApiOptions } from './verb.ts';

interface AuditFlags extends ApiFlags {
  since?: string;
  before?: string;
  token?: string;
  action?: string;
  zone?: string;
  limit?: number;
}

interface AuditEntry {
  when: string;
  action: { type: string; result: boolean };
  actor: { id: string; name?: string; ip?: string };
  resource: { type: string; id: string | null };
  metadata: { method: string; path: string; status: number; error_code: number | null };
}

/** A `--since` value: a duration ago (`1h`), else the time as given (the API checks it). */
function sinceArgument(value: string): string {
  try {
    return new Date(Date.now() - parseHumanDuration(value) * 1000).toISOString();
  } catch {
    return value;
  }
}

function limitArgument(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 1000) throw new InvalidArgumentError('must be 1..1000');
  return n;
}

export function addAuditCommands(program: Command): void {
  withApiOptions(
    program
      .command('audit')
      .description("show the account's audit log: every change through the admin API, newest first")
      .option(
        '--since <time>',
        'only entries since this time (RFC 3339, 2026-01-31) or this long ago (1h, 7d)',
        sinceArgument,
      )
      .option('--before <time>', 'only entries before this time (RFC 3339 or a date)')
      .option('--token <id>', 'only changes made with this API token id (see `pubsub token list`)')
      .option('--action <type>', 'only this action: create, update, delete, issue, revoke, deploy...')
      .option('--zone <name>', 'only changes to this <namespace> or <broker>.<namespace>')
      .option('--limit <n>', 'how many entries, newest first (1..1000; default 50)', limitArgument),
  ).action(
    verb<AuditFlags>(async (_args, flags) => {
      const api = await connect(flags);
      const query: Record<string, string> = { per_page: String(flags.limit ?? 50) };
      if (flags.since !== undefined) query.since = flags.since;
      if (flags.before !== undefined) query.before = flags.before;
      if (flags.token !== undefined) query['actor.id'] = flags.token;
      if (flags.action !== undefined) query['action.type'] = flags.action;
      if (flags.zone !== undefined) query['zone.name'] = flags.zone;
      const { result, resultInfo } = await api.client.requestList<AuditEntry>(
        'GET',
        api.accountPath('/audit_logs'),
        { query },
      );
      if (flags.json) return printJson(result);
      if (result.length === 0) return status('No audit log entries.');
      print(
        table(
          ['WHEN', 'TOKEN', 'FROM', 'ACTION', 'OBJECT', 'STATUS', 'PATH'],
          result.map((e) => [
            when(e.when),
            `${text(e.actor.name)} (${e.actor.id})`,
            text(e.actor.ip),
            e.action.type,
            `${e.resource.type} ${text(e.resource.id)}`,
            e.metadata.error_code === null
              ? String(e.metadata.status)
              : `${e.metadata.status} (code ${e.metadata.error_code})`,
            `${e.metadata.method} ${e.metadata.path}`,
          ]),
        ),
      );
      const total = resultInfo.total_count ?? result.length;
      if (total > result.length)
        status(`${result.length} of ${total} entries; --limit or --since for others.`);
    }),
  );
}
