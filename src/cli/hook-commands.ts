/**
 * `pubsub broker hook deploy|show|remove`, ours (wrangler had only `--on-publish-url`), over
 * `.../brokers/{name}/hook[/function]`:
 * - `deploy <broker> --ns <ns> --file fn.js` uploads a JavaScript module exporting
 *   `onPublish(messages, ctx)`; the server compiles it before it replaces the running version,
 *   and a refusal prints the server's reason (syntax error with its line, missing export...).
 * - `show <broker>` prints which hook runs, its settings, the function version and the hook's
 *   derived-publish budget and metrics (latency, drops, publishes refused by the budget, errors)
 *   with its last errors.
 * - `remove <broker>` removes the function and its state (asks first, like delete).
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { HookView } from '../hooks/index.ts';
import { brokerPath, type NamespaceFlag, withNamespace } from './broker-commands.ts';
import { UsageError } from './cli-error.ts';
import { type ApiFlags, connect } from './connection.ts';
import { fields, print, printJson, status, text } from './output.ts';
import { confirm, verb, withApiOptions, withYes } from './verb.ts';

interface HookFlags extends ApiFlags, NamespaceFlag {
  file?: string;
}

interface Deployed {
  version: number;
  sha256: string;
  deployedOn: string;
  bytes: number;
}

const hookPath = (ns: string, name: string): string => `${brokerPath(ns, name)}/hook`;

function describeHook(h: HookView): string {
  const m = h.metrics;
  const b = h.publish_budget;
  const lines = fields([
    ['hook', h.kind],
    ['on publish url', text(h.on_publish.url)],
    ['failure policy', h.on_publish.policy],
    ['webhook timeout', `${h.on_publish.timeout_ms} ms`],
    [
      'function',
      h.function === null
        ? '-'
        : `version ${h.function.version} (${h.function.bytes} bytes, sha256 ${h.function.sha256.slice(0, 12)}, deployed ${h.function.deployedOn})`,
    ],
    ['acknowledged', `${h.ack} the hook decides`],
    ['calls', `${m.calls} (${m.failures} failed, ${m.timeouts} timed out, ${m.retries} retries)`],
    [
      'messages',
      `${m.messages}: ${m.forwarded} forwarded, ${m.dropped} dropped, ${m.failedDropped} dropped by failures, ${m.failedForwarded} forwarded by fail-open, ${m.pending} pending`,
    ],
    ['published by function', `${m.published} (${m.publishRefused} refused by the budget)`],
    [
      'publish budget',
      `${b.messages_per_second} messages/s, ${b.bytes_per_second} bytes/s, burst ${b.burst_ms} ms`,
    ],
    ['latency', `p50 ${m.latencyMs.p50} ms, p99 ${m.latencyMs.p99} ms, max ${m.latencyMs.max} ms`],
  ]);
  if (m.lastErrors.length === 0) return lines;
  return `${lines}\n\nlast errors:\n${m.lastErrors.map((e) => `  ${e.at} ${e.kind}: ${e.message}`).join('\n')}`;
}

/** Adds `hook deploy|show|remove` under `broker`. */
export function addHookCommands(broker: Command): void {
  const hook = broker.command('hook').description("manage a broker's on-publish hook (sandboxed function)");

  withApiOptions(
    withNamespace(
      hook
        .command('deploy <broker>')
        .description(
          'deploy a JavaScript module exporting onPublish(messages, ctx); replaces the running version',
        )
        .requiredOption('--file <path>', 'the module to deploy'),
    ),
  ).action(
    verb<HookFlags>(async ([name], flags) => {
      let code: string;
      try {
        code = await readFile(flags.file!, 'utf8');
      } catch (err) {
        throw new UsageError(
          `cannot read ${flags.file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        );
      }
      const api = await connect(flags);
      const d = await api.client.request<Deployed>(
        'PUT',
        api.accountPath(`${hookPath(flags.namespace, name!)}/function`),
        {
          body: { code },
        },
      );
      if (flags.json) return printJson(d);
      status(
        `Deployed version ${d.version} of the on-publish function of broker ${name} (${d.bytes} bytes, sha256 ${d.sha256.slice(0, 12)}).`,
      );
    }),
  );

  withApiOptions(
    withNamespace(
      hook.command('show <broker>').description("show the broker's hook, its metrics and last errors"),
    ),
  ).action(
    verb<HookFlags>(async ([name], flags) => {
      const api = await connect(flags);
      const h = await api.client.request<HookView>('GET', api.accountPath(hookPath(flags.namespace, name!)));
      if (flags.json) return printJson(h);
      print(describeHook(h));
    }),
  );

  withApiOptions(
    withYes(
      withNamespace(
        hook.command('remove <broker>').description('remove the on-publish function and its state'),
      ),
    ),
  ).action(
    verb<HookFlags & { yes?: boolean }>(async ([name], flags) => {
      await confirm(`Remove the on-publish function of broker ${name} and its state`, flags.yes);
      const api = await connect(flags);
      await api.client.request<null>(
        'DELETE',
        api.accountPath(`${hookPath(flags.namespace, name!)}/function`),
      );
      if (flags.json) return printJson(null);
      status(`Removed the on-publish function of broker ${name}.`);
    }),
  );
}
