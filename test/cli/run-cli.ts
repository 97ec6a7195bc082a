/**
 * The CLI suite's fixtures: an in-process server with the admin API and a runner of the real
 * `pubsub` binary pointed at it through the environment (runCli in test/helpers/pubsub-process.ts),
 * and readers of the human output (describe views, tables).
 */
import assert from 'node:assert/strict';
import { type CliResult, type RunOptions, runCli, show } from '../helpers/pubsub-process.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

/** An in-process server with the admin API, and a runner pointed at it through the environment. */
export interface ApiServer {
  server: TestServer;
  /** Runs the CLI with PUBSUB_API_URL and PUBSUB_API_TOKEN set to this server's. */
  run(args: string[], options?: RunOptions): Promise<CliResult>;
  /** Like run, but fails the test unless the CLI exits 0. */
  ok(args: string[], options?: RunOptions): Promise<CliResult>;
  /** Runs with --json and returns the parsed stdout (exit 0 asserted). */
  json<T>(args: string[], options?: RunOptions): Promise<T>;
}

export async function startApiServer(): Promise<ApiServer> {
  const server = await startServer({ httpPort: 0 });
  const run = (args: string[], options: RunOptions = {}) =>
    runCli(args, {
      ...options,
      env: { PUBSUB_API_URL: server.apiUrl, PUBSUB_API_TOKEN: server.adminToken, ...options.env },
    });
  const ok = async (args: string[], options?: RunOptions) => {
    const result = await run(args, options);
    if (result.code !== 0) throw new Error(`expected exit 0\n${show(args, result)}`);
    return result;
  };
  const json = async <T>(args: string[], options?: RunOptions): Promise<T> => {
    const result = await ok([...args, '--json'], options);
    return JSON.parse(result.stdout) as T;
  };
  return { server, run, ok, json };
}

/**
 * The `label: value` lines of a describe view, asserting that every value starts in the same
 * column.
 */
export function fieldsOf(stdout: string): Map<string, string> {
  const lines = stdout.trimEnd().split('\n');
  const columns = new Set<number>();
  const out = new Map<string, string>();
  for (const line of lines) {
    const match = /^([^:]+):( +)(.*)$/.exec(line);
    assert.ok(match, `a "label: value" line: ${JSON.stringify(line)}`);
    if (match[3] !== '') columns.add(match[1]!.length + 1 + match[2]!.length);
    out.set(match[1]!, match[3]!);
  }
  assert.equal(columns.size, 1, `values aligned in one column:\n${stdout}`);
  return out;
}

/** The cells of a table row whose first column is `first`. */
export function row(stdout: string, first: string): string[] | undefined {
  return stdout
    .split('\n')
    .map((line) => line.split(/ {2,}/))
    .find((cells) => cells[0] === first);
}
