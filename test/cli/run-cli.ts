/**
 * Runs the real `pubsub` binary (this Node + src/cli.ts) the way a user's shell does, and
 * collects its exit code, stdout and stderr. The caller's PUBSUB_* variables never leak in, so a
 * test says exactly where the CLI should find the API (flags, `env`, or a data dir).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startServer, type TestServer } from '../helpers/server.ts';

export const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Extra environment variables (on top of the caller's, minus every PUBSUB_*). */
  env?: Record<string, string>;
  cwd?: string;
  /** Written to stdin, which is then closed (stdin is a pipe, never a terminal). */
  input?: string;
  timeoutMs?: number;
}

/** The environment without any PUBSUB_* variable of the caller's, plus `extra`. */
export function cliEnvironment(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('PUBSUB_')) env[key] = value;
  return { ...env, ...extra };
}

export function runCli(args: string[], options: RunOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: cliEnvironment(options.env),
      cwd: options.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.stdin.on('error', () => {});
    child.stdin.end(options.input ?? '');
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(`pubsub ${args.join(' ')}: no exit within ${options.timeoutMs ?? 15_000} ms\n${stderr}`),
      );
    }, options.timeoutMs ?? 15_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** What a failed expectation prints: the command and everything it wrote. */
export const show = (args: string[], r: CliResult): string =>
  `$ pubsub ${args.join(' ')}\nexit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

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
