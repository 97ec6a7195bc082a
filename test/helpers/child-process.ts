/**
 * Child processes a test reads and waits on. `Child`: a spawned process whose stdout is kept as
 * lines, with waits on a line and on its exit; `spawnChild` ties it to a test so that the test's
 * `after` hook always kills it (SIGKILL), whatever the outcome. `until` polls a condition. Every
 * wait ends after WAIT_MS with a failure that shows what the process printed.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import type { TestContext } from 'node:test';

/** How long any wait for a client's output lasts before the test fails. Generous on purpose. */
export const WAIT_MS = 15_000;

/** Resolves once `condition` holds (it may be async), polling; fails after `timeoutMs` naming `what` (or what it returns then). */
export async function until(
  condition: () => boolean | Promise<boolean>,
  what: string | (() => string),
  timeoutMs = WAIT_MS,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline)
      assert.fail(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
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
