/**
 * The start-up banner's line about the bootstrap admin token. The secret is printed only where
 * it cannot reach a log collector by accident: on a terminal, or with `:memory:` (no file holds
 * it, so stdout is the only place). A pipe (systemd, docker logs, a supervisor) gets the file's
 * path instead, and `--quiet-token` never prints the secret (config refuses it with `:memory:`).
 */
import { join } from 'node:path';
import type { Config } from '../config.ts';

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
