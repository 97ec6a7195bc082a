/**
 * The real `pubsub` binary (this Node + src/cli.ts) run the way a user's shell runs it:
 *
 * - `runCli`: a management verb run to completion, with its exit code, stdout and stderr.
 * - `spawnServe` / `startServe`: `pubsub serve` as a child process. Every listener gets port 0
 *   (`--port`, `--ws-port`, `--tls-port`, `--wss-port`, `--http-port`) unless the test names
 *   that listener's port itself (a flag in `args` or its variable in `env`), so no test
 *   depends on a default port being free. `startServe` waits for the banner and reads the bound
 *   URLs from it. The process is SIGKILLed by the test's after hook whatever the outcome, and a
 *   data directory the helper made is removed after it.
 *
 * The caller's PUBSUB_* variables never leak in, so a test says exactly where the CLI finds the
 * API and how the server is configured (flags, `env`, or a data dir).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type Child, spawnChild } from './child-process.ts';

export const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
/** The `pubsub` command itself (`npm start`, the installed bin): run by its own first line. */
export const BIN = fileURLToPath(new URL('../../bin/pubsub.js', import.meta.url));

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

/** A fresh directory under the system's temporary directory, removed after the test. */
export function tempDir(t: TestContext, prefix = 'pubsub-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Every listener's port flag and variable: each gets 0 unless the test gives it. */
const LISTENER_PORTS: readonly (readonly [flag: string, variable: string])[] = [
  ['--port', 'PUBSUB_PORT'],
  ['--ws-port', 'PUBSUB_WS_PORT'],
  ['--tls-port', 'PUBSUB_TLS_PORT'],
  ['--wss-port', 'PUBSUB_WSS_PORT'],
  ['--http-port', 'PUBSUB_HTTP_PORT'],
];

export interface ServeOptions {
  /**
   * `--data-dir`. Omitted: a fresh temporary directory, removed once the process is gone.
   * `null`: no flag (serve's default, ./data under `cwd`).
   */
  dataDir?: string | null;
  /** More `serve` flags (a listener's port flag here replaces its 0). */
  args?: string[];
  /** Environment variables on top of the caller's minus PUBSUB_*; PUBSUB_LOG_LEVEL is warn unless given. */
  env?: Record<string, string>;
  cwd?: string;
  /**
   * Run `bin/pubsub.js` as an executable (its `#!/usr/bin/env -S node …` line picks the node
   * first on PATH, this one), as `npm start` and the installed command do, instead of
   * `node src/cli.ts`.
   */
  launcher?: boolean;
}

export interface ServeProcess {
  child: Child;
  /** The data directory it was given (`:memory:` as such; with `dataDir: null`, `<cwd>/data`). */
  dataDir: string;
}

/** Spawns `pubsub serve` without waiting for it (for starts expected to fail). */
export function spawnServe(t: TestContext, options: ServeOptions = {}): ServeProcess {
  const args = options.args ?? [];
  const env: Record<string, string> = { PUBSUB_LOG_LEVEL: 'warn', ...options.env };
  let ownDir: string | undefined;
  let dataDir: string;
  if (options.dataDir === undefined) {
    ownDir = mkdtempSync(join(tmpdir(), 'pubsub-serve-'));
    dataDir = join(ownDir, 'data');
  } else dataDir = options.dataDir ?? resolve(options.cwd ?? '.', 'data');
  const ports = LISTENER_PORTS.filter(
    ([flag, variable]) => !args.includes(flag) && env[variable] === undefined,
  );
  if (options.launcher === true)
    env.PATH = `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}`;
  const child = spawnChild(
    t,
    options.launcher === true ? BIN : process.execPath,
    [
      ...(options.launcher === true ? [] : [CLI]),
      'serve',
      ...(options.dataDir === null ? [] : ['--data-dir', dataDir]),
      ...ports.flatMap(([flag]) => [flag, '0']),
      ...args,
    ],
    { env: cliEnvironment(env), ...(options.cwd === undefined ? {} : { cwd: options.cwd }) },
  );
  if (ownDir !== undefined) {
    const dir = ownDir;
    t.after(async () => {
      await child.kill();
      rmSync(dir, { recursive: true, force: true });
    });
  }
  return { child, dataDir };
}

const LISTENING = /^pubsub: (mqtt|ws|tls|wss) listening on (\S+)$/;
const API_LISTENING = /^pubsub: admin API listening on (\S+)$/;
const ACCOUNT = /^pubsub: account id ([0-9a-f]{32})$/;

export interface RunningServe extends ServeProcess {
  /** The listeners' URLs by name (mqtt, ws, and with TLS tls, wss), from the banner. */
  urls: Record<string, string>;
  /** The admin API's base URL, '' when it has none. */
  apiUrl: string;
  accountId: string;
  /** The banner's line about the admin API token, undefined when it printed none. */
  tokenLine: string | undefined;
  /** The bound port of listener `name`. */
  port(name: string): number;
  /** SIGTERM, then asserts a clean exit (code 0) within 5 s. */
  stop(): Promise<void>;
}

/** Spawns `pubsub serve` and resolves once its banner is out (up to the account id line). */
export async function startServe(t: TestContext, options: ServeOptions = {}): Promise<RunningServe> {
  const started = spawnServe(t, options);
  const { child } = started;
  const account = await child.waitForLine((l) => ACCOUNT.test(l), 'the banner (account id line)');
  // The banner is one write: every line before the account id's is in, and the token line after it.
  const urls: Record<string, string> = {};
  let apiUrl = '';
  for (const line of child.lines) {
    const listener = LISTENING.exec(line);
    if (listener !== null) urls[listener[1]!] ??= listener[2]!;
    const api = API_LISTENING.exec(line);
    if (api !== null) apiUrl = api[1]!;
  }
  return {
    ...started,
    urls,
    apiUrl,
    accountId: ACCOUNT.exec(account)![1]!,
    tokenLine: child.lines.find((l) => l.startsWith('pubsub: admin API token')),
    port(name) {
      const url = urls[name];
      assert.ok(url !== undefined, `no ${name} listener in the banner\n${child.report()}`);
      return Number(new URL(url).port);
    },
    async stop() {
      child.process.kill('SIGTERM');
      assert.deepEqual(await child.waitForExit(5000), { code: 0, signal: null }, child.report());
    },
  };
}
