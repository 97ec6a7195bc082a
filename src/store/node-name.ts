/**
 * The node's name: what this server calls itself in its log lines (`node`), its metrics (the
 * `node` label) and, later, the cluster (issue 18). `--node-name` sets it; without it the name
 * is the one the data directory remembers, else the host name.
 *
 * Invariants:
 * - `<data-dir>/node-name` holds the name of the last start, written at the first start (the
 *   host name, or `--node-name`) and again whenever `--node-name` gives another: a restart
 *   without the option keeps the name even if the host is renamed (a container gets a new
 *   host name at each start), so metric series and cluster membership stay the same node's.
 * - With `:memory:` nothing is kept: the name is `--node-name`, else the host name.
 * - A name is 1 to 63 letters, digits, `.`, `_` or `-`, starting with a letter or digit (a
 *   host name fits); a file holding anything else stops the start rather than be guessed at.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

export const NODE_NAME_FILE = 'node-name';

const NODE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** True when `name` can name a node (see the invariants above). */
export function isNodeName(name: string): boolean {
  return NODE_NAME.test(name);
}

/**
 * The name of this start: `configured` when given (and then remembered), else the data
 * directory's, else the host name (remembered). `dataDir` exists and is this server's (locked).
 */
export function resolveNodeName(dataDir: string, configured: string): string {
  const fallback = configured !== '' ? configured : defaultName();
  if (dataDir === ':memory:') return fallback;
  const file = join(dataDir, NODE_NAME_FILE);
  const stored = readStored(file);
  if (configured === '' && stored !== undefined) return stored;
  if (stored !== fallback) writeFileSync(file, `${fallback}\n`, { mode: 0o644 });
  return fallback;
}

/** The host name when it can name a node; else its usable part (cut at the first bad character). */
function defaultName(): string {
  const host = hostname();
  if (isNodeName(host)) return host;
  const cut = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}/.exec(host)?.[0];
  return cut ?? 'node';
}

function readStored(file: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  if (!isNodeName(text))
    throw new Error(
      `${file} holds ${JSON.stringify(text.slice(0, 80))}, not a node name (letters, digits, . _ -): fix or delete it, or pass --node-name`,
    );
  return text;
}
