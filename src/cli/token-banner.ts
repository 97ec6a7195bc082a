/**
 * The start-up banner's line about the bootstrap admin token. The secret is printed only where
 * it cannot reach a log collector by accident: on a terminal, or with `:memory:` (no file holds
 * it, so stdout is the only place). A pipe (systemd, docker logs, a supervisor) gets the file's
 * path instead, and `--quiet-token` never prints the secret (config refuses it with `:memory:`).
 *
 * Later starts name the file again (never the secret) for as long as its token is the account's
 * only API token, so a first start that failed after writing it (a port in use) loses nothing:
 * `pubsub token show-bootstrap` prints it.
 */
import { join } from 'node:path';
import type { Config } from '../config.ts';

/** The line of the start that created the token. */
export function tokenBanner(
  config: Pick<Config, 'dataDir' | 'quietToken'>,
  token: string,
  stdoutIsTerminal: boolean,
): string {
  if (config.dataDir === ':memory:') return `pubsub: admin API token, shown once: ${token}`;
  const file = join(config.dataDir, 'admin-token');
  if (stdoutIsTerminal && !config.quietToken)
    return `pubsub: admin API token, shown once (also in ${file}, mode 0600): ${token}`;
  return `pubsub: admin API token written to ${file} (mode 0600)`;
}

/** The line of a later start while `file` holds the only API token. */
export function bootstrapTokenReminder(file: string): string {
  return `pubsub: admin API token in ${file} (mode 0600; \`pubsub token show-bootstrap\` prints it)`;
}
