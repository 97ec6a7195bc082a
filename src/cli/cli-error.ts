/**
 * Failures of a management verb that are not the API's own errors, with their exit codes:
 * `UsageError` (2) for what the user typed (a missing flag, a bad value, a refused
 * confirmation in a non-interactive run), `CliError` (1) for everything else the CLI detects
 * (no token, API unreachable, unexpected answer).
 */

export class CliError extends Error {
  override name = 'CliError';
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

export class UsageError extends CliError {
  override name = 'UsageError';
  constructor(message: string) {
    super(message, 2);
  }
}
