/**
 * The three ways a sandboxed on-publish function fails, as typed errors the hook pipeline, the
 * logs, the metrics and the API can tell apart:
 * - FunctionDeployError: the module cannot become a working hook (syntax error, an import, no
 *   `onPublish` export, a top level that throws or exceeds a limit). Raised by
 *   `FunctionHook.create`, so a bad version is refused at deploy time and never replaces a good one.
 * - FunctionLimitError: one call exceeded the CPU-time or memory limit and was stopped. The
 *   sandbox that ran it is discarded and rebuilt from the code for the next call.
 * - FunctionRuntimeError: one call threw, rejected, never settled, or returned something that
 *   cannot leave the sandbox. The sandbox stays usable.
 * A failed call has no side effects (see effects.ts).
 */

export class FunctionDeployError extends Error {
  override readonly name = 'FunctionDeployError';
  /** 1-based line in the deployed file, when QuickJS reported one. */
  readonly line: number | undefined;
  /** 1-based column, when QuickJS reported one. */
  readonly column: number | undefined;

  constructor(message: string, position?: { line: number; column?: number | undefined }) {
    super(message);
    this.line = position?.line;
    this.column = position?.column;
  }
}

export class FunctionLimitError extends Error {
  override readonly name = 'FunctionLimitError';
  readonly limit: 'cpu' | 'memory';

  constructor(limit: 'cpu' | 'memory', message: string) {
    super(message);
    this.limit = limit;
  }
}

export class FunctionRuntimeError extends Error {
  override readonly name = 'FunctionRuntimeError';
  /** The stack trace inside the sandbox (`    at onPublish (hook.js:3)` lines), or ''. */
  readonly sandboxStack: string;

  constructor(message: string, sandboxStack: string) {
    super(message);
    this.sandboxStack = sandboxStack;
    // Logs print `stack`: show where the user's code failed, not where the host noticed.
    if (sandboxStack !== '') this.stack = `${this.name}: ${message}\n${sandboxStack}`;
  }
}
