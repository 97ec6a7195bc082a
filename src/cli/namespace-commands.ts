/**
 * `pubsub namespace create|list|describe|delete`, wrangler's verbs, over
 * `/client/v4/accounts/{account_id}/pubsub/namespaces[/{name}]`. Delete asks first (see
 * verb.ts); `--cascade` also deletes the namespace's brokers, which the API otherwise refuses
 * (409, code 14004).
 */
import type { Command } from 'commander';
import { ApiFailure, segment } from './api-client.ts';
import { type ApiFlags, connect } from './connection.ts';
import { fields, print, printJson, status, table, text, when } from './output.ts';
import { confirm, verb, withApiOptions, withYes } from './verb.ts';

/** Cloudflare-style code of "namespace has brokers". */
const NAMESPACE_NOT_EMPTY = 14004;

export interface NamespaceResult {
  id: string;
  name: string;
  description?: string;
  created_on?: string;
  modified_on?: string;
}

export const namespacesPath = '/pubsub/namespaces';
export const namespacePath = (name: string): string => `${namespacesPath}/${segment(name)}`;

function describeNamespace(ns: NamespaceResult): string {
  return fields([
    ['name', ns.name],
    ['id', ns.id],
    ['description', text(ns.description)],
    ['created', when(ns.created_on)],
    ['modified', when(ns.modified_on)],
  ]);
}

export function addNamespaceCommands(program: Command): Command {
  const namespace = program.command('namespace').description('manage namespaces (groups of brokers)');

  withApiOptions(
    namespace
      .command('create <name>')
      .description('create a namespace (a DNS label, unique on this server)')
      .option('--description <text>', 'a description'),
  ).action(
    verb<ApiFlags & { description?: string }>(async ([name], flags) => {
      const api = await connect(flags);
      const body: Record<string, unknown> = { name };
      if (flags.description !== undefined) body.description = flags.description;
      const ns = await api.client.request<NamespaceResult>('POST', api.accountPath(namespacesPath), { body });
      if (flags.json) return printJson(ns);
      status(`Created namespace ${ns.name}.`);
      print(describeNamespace(ns));
    }),
  );

  withApiOptions(namespace.command('list').description('list the namespaces of the account')).action(
    verb<ApiFlags>(async (_args, flags) => {
      const api = await connect(flags);
      const list = await api.client.request<NamespaceResult[]>('GET', api.accountPath(namespacesPath));
      if (flags.json) return printJson(list);
      if (list.length === 0) return status('No namespaces.');
      print(
        table(
          ['NAME', 'ID', 'CREATED', 'DESCRIPTION'],
          list.map((ns) => [ns.name, ns.id, when(ns.created_on), text(ns.description)]),
        ),
      );
    }),
  );

  withApiOptions(namespace.command('describe <name>').description('show one namespace')).action(
    verb<ApiFlags>(async ([name], flags) => {
      const api = await connect(flags);
      const ns = await api.client.request<NamespaceResult>('GET', api.accountPath(namespacePath(name!)));
      if (flags.json) return printJson(ns);
      print(describeNamespace(ns));
    }),
  );

  withApiOptions(
    withYes(
      namespace
        .command('delete <name>')
        .description('delete a namespace; its name becomes free for others to register')
        .option('--cascade', "also delete the namespace's brokers (their clients are disconnected)"),
    ),
  ).action(
    verb<ApiFlags & { cascade?: boolean; yes?: boolean }>(async ([name], flags) => {
      const api = await connect(flags);
      const what = flags.cascade
        ? `Delete namespace ${name} and every broker in it (their clients are disconnected)`
        : `Delete namespace ${name} (this name will be available for others to register)`;
      await confirm(what, flags.yes);
      const query: Record<string, string> = flags.cascade ? { cascade: 'true' } : {};
      try {
        const result = await api.client.request('DELETE', api.accountPath(namespacePath(name!)), { query });
        if (flags.json) return printJson(result);
        status(`Deleted namespace ${name}.`);
      } catch (err) {
        if (err instanceof ApiFailure && err.has(NAMESPACE_NOT_EMPTY))
          err.hint = 'pass --cascade to delete its brokers with it';
        throw err;
      }
    }),
  );

  return namespace;
}
