/**
 * Shared by the interop tests. Two things:
 *
 * - Whether a real client from Debian is installed. A suite needing a missing one is skipped
 *   with the package to install, except under CI (`CI` set), where it fails: CI promises to
 *   have installed every interop client, so a missing one is a broken machine, not a skip.
 * - `Child`: a spawned process whose stdout a test reads line by line and waits on, and which
 *   the test's `after` hook always kills (SIGKILL), whatever the test's outcome.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, type SpawnOptions, spawn, spawnSync } from 'node:child_process';
import { describe, it, type TestContext } from 'node:test';

/** How long any wait for a client's output lasts before the test fails. Generous on purpose. */
export const WAIT_MS = 15_000;

/** Debian's Python, which is where python3-paho-mqtt installs (a pyenv python on PATH lacks it). */
export const PYTHON = '/usr/bin/python3';

export interface Tool {
  /** What the tests run, for messages. */
  readonly what: string;
  /** The Debian package that provides it. */
  readonly debianPackage: string;
  readonly available: boolean;
}

function runs(command: string, args: string[]): boolean {
  const result = spawnSync(command, args, { stdio: 'ignore', timeout: 10_000 });
  return result.error === undefined && result.status === 0;
}

function tool(what: string, debianPackage: string, probe: () => boolean): Tool {
  let available: boolean | undefined;
  return {
    what,
    debianPackage,
    get available() {
      available ??= probe();
      return available;
    },
  };
}

/** `mosquitto_pub` and `mosquitto_sub` (run through coreutils' `stdbuf` for line-buffered output). */
export const mosquittoClients = tool('mosquitto_pub/mosquitto_sub', 'mosquitto-clients', () =>
  runs('sh', ['-c', 'command -v mosquitto_pub && command -v mosquitto_sub && command -v stdbuf']),
);

/** OpenSSL's command-line tool, whose `s_client` offers the cipher suites a test names. */
export const openssl = tool('openssl', 'openssl', () => runs('openssl', ['version']));

/** curl, for replaying documented API commands. */
export const curl = tool('curl', 'curl', () => runs('curl', ['--version']));

/** The Eclipse Paho Python client in Debian's Python. */
export const pahoPython = tool(`${PYTHON} with paho-mqtt`, 'python3-paho-mqtt', () =>
  runs(PYTHON, ['-c', 'import paho.mqtt.client']),
);

/** Debian's Chromium, driven by playwright-core in the browser test. */
export const CHROMIUM = '/usr/bin/chromium';
export const chromium = tool(CHROMIUM, 'chromium', () => runs(CHROMIUM, ['--version']));

/**
 * `describe` for a suite that needs `needed`: runs it when installed; otherwise skips it naming
 * the Debian package, or under CI replaces it with one failing test saying what is missing.
 */
export function describeWithTool(name: string, needed: Tool, fn: () => void): void {
  if (needed.available) {
    describe(name, fn);
    return;
  }
  const message = `${needed.what} not found: install the Debian package ${needed.debianPackage} (apt-get install ${needed.debianPackage})`;
  if (process.env.CI) {
    describe(name, () => {
      it(`needs ${needed.what}`, () => assert.fail(`${message}; CI must provide it`));
    });
  } else {
    describe(name, { skip: message }, fn);
  }
}

/** Resolves once `condition` holds, polling; fails after `timeoutMs` naming `what`. */
export async function until(condition: () => boolean, what: string, timeoutMs = WAIT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

let counter = 0;
/** A name unique within this process and across concurrently running test files. */
export function uniqueName(prefix: string): string {
  counter++;
  return `${prefix}-${process.pid}-${counter}-${Math.random().toString(36).slice(2, 8)}`;
}

interface LineWaiter {
  predicate: (line: string) => boolean;
  from: number;
  resolve: (line: string) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
  what: string;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A child process whose stdout is kept as lines, with waits on them and on its exit. */
export class Child {
  readonly process: ChildProcess;
  readonly description: string;
  /** Every complete stdout line so far. */
  readonly lines: string[] = [];
  stderr = '';
  exit: Exit | undefined;
  readonly exited: Promise<Exit>;
  #partial = '';
  #waiters: LineWaiter[] = [];

  constructor(command: string, args: string[], options: SpawnOptions = {}) {
    this.description = [command, ...args].join(' ');
    this.process = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], ...options });
    this.process.stdout!.setEncoding('utf8');
    this.process.stderr!.setEncoding('utf8');
    this.process.stdout!.on('data', (chunk: string) => this.#onStdout(chunk));
    this.process.stderr!.on('data', (chunk: string) => {
      this.stderr += chunk;
    });
    this.process.stdin!.on('error', () => {});
    this.exited = new Promise((resolve) => {
      this.process.once('error', (err) => {
        this.stderr += `spawn failed: ${err.message}\n`;
        this.#settle({ code: null, signal: null }, resolve);
      });
      this.process.once('close', (code, signal) => this.#settle({ code, signal }, resolve));
    });
  }

  #settle(exit: Exit, resolve: (exit: Exit) => void): void {
    if (this.exit !== undefined) return;
    if (this.#partial !== '') this.#addLine(this.#partial);
    this.#partial = '';
    this.exit = exit;
    resolve(exit);
    for (const w of this.#waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(new Error(`${w.what}: process exited (${exit.code ?? exit.signal})\n${this.report()}`));
    }
  }

  #onStdout(chunk: string): void {
    const parts = (this.#partial + chunk).split('\n');
    this.#partial = parts.pop()!;
    for (const line of parts) this.#addLine(line);
  }

  #addLine(line: string): void {
    this.lines.push(line);
    const index = this.lines.length - 1;
    for (const w of [...this.#waiters]) {
      if (index >= w.from && w.predicate(line)) {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        clearTimeout(w.timer);
        w.resolve(line);
      }
    }
  }

  /** What the process printed, for failure messages. */
  report(): string {
    return `$ ${this.description}\nstdout:\n${this.lines.join('\n')}\nstderr:\n${this.stderr}`;
  }

  /**
   * Resolves with the first stdout line at index `from` or later that satisfies `predicate`,
   * already printed or still to come. Rejects after `timeoutMs` or when the process exits first.
   */
  waitForLine(
    predicate: (line: string) => boolean,
    what: string,
    from = 0,
    timeoutMs = WAIT_MS,
  ): Promise<string> {
    for (let i = from; i < this.lines.length; i++) {
      if (predicate(this.lines[i]!)) return Promise.resolve(this.lines[i]!);
    }
    if (this.exit !== undefined) {
      return Promise.reject(new Error(`${what}: process already exited\n${this.report()}`));
    }
    return new Promise((resolve, reject) => {
      const waiter: LineWaiter = {
        predicate,
        from,
        resolve,
        reject,
        what,
        timer: setTimeout(() => {
          this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${this.report()}`));
        }, timeoutMs),
      };
      this.#waiters.push(waiter);
    });
  }

  /** Resolves with the exit status; fails after `timeoutMs`. */
  async waitForExit(timeoutMs = WAIT_MS): Promise<Exit> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`timed out after ${timeoutMs} ms waiting for exit\n${this.report()}`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Writes one line to the child's stdin. */
  writeLine(line: string): void {
    this.process.stdin!.write(`${line}\n`);
  }

  /** SIGKILL unless already gone; resolves once it has exited. */
  async kill(): Promise<void> {
    if (this.exit === undefined) this.process.kill('SIGKILL');
    await this.exited;
  }
}

/** Spawns a child that `t`'s after hook kills, pass or fail. */
export function spawnChild(
  t: TestContext,
  command: string,
  args: string[],
  options: SpawnOptions = {},
): Child {
  const child = new Child(command, args, options);
  t.after(() => child.kill());
  return child;
}
