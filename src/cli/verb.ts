/**
 * What every management verb shares: the connection flags (`--url`, `--data-dir`,
 * `--token-file`, `--account`, `--json`), the error-to-exit-code mapping, the confirmation
 * prompt of destructive verbs, and argument parsers that turn bad values into usage errors.
 *
 * Exit codes: 0 done; 1 the API refused (its messages and codes on stderr), could not be
 * reached, or the user declined a prompt; 2 bad usage (commander's own errors are mapped to 2
 * in cli.ts).
 *
 * Confirmation: a destructive verb asks `[y/N]` on stderr when stdin is a terminal; `--yes`
 * skips the question. Without a terminal and without `--yes` it refuses (exit 2) rather than
 * guessing: wrangler answers "yes" on its own in non-interactive runs, which makes a typo in a
 * script delete things.
 */
import { createInterface } from 'node:readline/promises';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { DurationError, parseHumanDuration } from '../duration.ts';
import { ApiFailure } from './api-client.ts';
import { CliError, UsageError } from './cli-error.ts';
import type { ApiFlags } from './connection.ts';

/** Adds `--data-dir` (where `pubsub serve` keeps api-url and admin-token). */
export function withDataDirOption(command: Command): Command {
  return command.option(
    '--data-dir <dir>',
    "the server's data directory, read for api-url and admin-token [PUBSUB_DATA_DIR; default ./data]",
  );
}

/**
 * Adds the connection and output flags every management verb takes; `account: false` leaves
 * out `--account` for verbs that name accounts otherwise (`account delete ID`, `token create
 * --account` repeated).
 */
export function withApiOptions(command: Command, { account = true }: { account?: boolean } = {}): Command {
  const withConnection = withDataDirOption(
    command
      .option('--json', 'print the API result as JSON (for scripts)')
      .option(
        '--url <url>',
        'admin API base URL [PUBSUB_API_URL; default: <data-dir>/api-url, else http://127.0.0.1:8080]',
      ),
  ).option(
    '--token-file <file>',
    'read the admin API token from this file [default: PUBSUB_API_TOKEN, else <data-dir>/admin-token]',
  );
  if (!account) return withConnection;
  return withConnection.option(
    '--account <id>',
    'account id [PUBSUB_ACCOUNT_ID; default: the first account of GET /client/v4/accounts]',
  );
}

/** Adds `--yes` (skip the confirmation prompt). */
export function withYes(command: Command): Command {
  return command.option('-y, --yes', 'do not ask for confirmation');
}

/** Commander argument parser for human durations (`--expiration 1h`): usage error when invalid. */
export function durationArgument(value: string): number {
  try {
    return parseHumanDuration(value);
  } catch (err) {
    if (err instanceof DurationError) throw new InvalidArgumentError(err.message);
    throw err;
  }
}

/** An option whose value must be one of `choices`, compared case-insensitively, given upper-case. */
export function upperCaseChoice(flags: string, description: string, choices: readonly string[]): Option {
  return new Option(flags, `${description} (${choices.join(', ')})`).argParser((value: string) => {
    const upper = value.toUpperCase();
    if (!choices.includes(upper)) throw new InvalidArgumentError(`must be one of ${choices.join(', ')}`);
    return upper;
  });
}

/**
 * Wraps a verb's handler: errors become a message on stderr and an exit code instead of a stack
 * trace. The handler gets commander's arguments, the last being the command (opts are taken from it).
 */
export function verb<Flags extends ApiFlags>(
  handler: (args: string[], flags: Flags) => Promise<void>,
): (...commanderArgs: unknown[]) => Promise<void> {
  return async (...commanderArgs) => {
    const command = commanderArgs.at(-1) as Command;
    const args = commanderArgs.slice(0, -2) as string[];
    try {
      await handler(args, command.opts<Flags>());
    } catch (err) {
      process.exitCode = report(err);
    }
  };
}

/** Prints a failure and returns its exit code. */
function report(err: unknown): number {
  if (err instanceof ApiFailure) {
    const lines =
      err.errors.length > 0 ? err.errors.map((e) => `${e.message} (code ${e.code})`) : [`HTTP ${err.status}`];
    for (const line of lines) process.stderr.write(`pubsub: ${line}\n`);
    if (err.hint !== undefined) process.stderr.write(`pubsub: ${err.hint}\n`);
    return 1;
  }
  if (err instanceof CliError) {
    process.stderr.write(`pubsub: ${err.message}\n`);
    return err.exitCode;
  }
  process.stderr.write(`pubsub: unexpected error: ${(err as Error)?.stack ?? String(err)}\n`);
  return 1;
}

/**
 * Asks `question` before a destructive action unless `yes`. Resolves when confirmed; throws a
 * UsageError without a terminal, a CliError (exit 1) when the user declines.
 */
export async function confirm(question: string, yes: boolean | undefined): Promise<void> {
  if (yes === true) return;
  if (process.stdin.isTTY !== true)
    throw new UsageError(`${question}: not confirmed (stdin is not a terminal); pass --yes to go ahead`);
  const prompt = createInterface({ input: process.stdin, output: process.stderr });
  // Ctrl-C or Ctrl-D at the prompt is a "no", not a hang.
  const abort = new AbortController();
  prompt.on('SIGINT', () => abort.abort());
  prompt.on('close', () => abort.abort());
  let answer = '';
  try {
    answer = await prompt.question(`${question}? [y/N] `, { signal: abort.signal });
  } catch (err) {
    if ((err as Error).name !== 'AbortError') throw err;
    process.stderr.write('\n');
  } finally {
    prompt.close();
  }
  if (!/^y(es)?$/i.test(answer.trim())) throw new CliError('cancelled: nothing changed');
}
