/**
 * One server per data directory. `<data-dir>/pubsub.lock` holds the pid of the process whose
 * server owns the directory; a second server on the same directory refuses to start instead
 * of sharing the database and overwriting `api-url` (which would strand the CLI).
 *
 * Invariants:
 * - The lock file appears whole or not at all: it is written under a private name, then
 *   hard-linked to `pubsub.lock`, which fails when the name exists (an exclusive create whose
 *   content is never seen half-written).
 * - A lock whose pid is not alive (the owner was SIGKILLed, or crashed) is taken over: a crash
 *   never leaves the directory locked. Alive means `process.kill(pid, 0)` succeeds or fails
 *   with EPERM (the process exists, under another user). A lock naming this very process but
 *   not held by it was left by an earlier process that had the same pid (a container restart).
 * - Taking over renames the stale file aside and checks that what moved is the content judged
 *   stale; if another server took the lock over meanwhile, its file is put back and this start
 *   refuses. So two servers taking over the same stale lock at once never both hold it.
 * - Released (the file removed) by `release`, only while the file is still this holder's.
 */
import { linkSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const LOCK_FILE = 'pubsub.lock';

/** The data directory belongs to another live server. */
export class DataDirLockedError extends Error {
  override name = 'DataDirLockedError';
  readonly ownerPid: number;
  constructor(dataDir: string, file: string, ownerPid: number) {
    super(
      `data directory ${dataDir} is in use by another pubsub server (pid ${ownerPid}, lock file ${file}): stop it, or give this server another --data-dir`,
    );
    this.ownerPid = ownerPid;
  }
}

/** Lock files held by this process: a second server in the same process is refused too. */
const heldHere = new Set<string>();

/** How many times a start retries when the lock vanishes or is taken over under it. */
const ATTEMPTS = 5;

const errnoOf = (err: unknown): string | undefined => (err as NodeJS.ErrnoException).code;

function uniqueSuffix(): string {
  return `${process.pid}.${Math.random().toString(36).slice(2, 10)}`;
}

/** The lock's content, or undefined when there is no lock file. */
function readLock(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return undefined;
    throw err;
  }
}

/** The pid a lock names, or undefined when its content is not a pid (nothing we wrote). */
function pidOf(content: string): number | undefined {
  const match = /^(\d+)\n$/.exec(content);
  return match === null ? undefined : Number(match[1]);
}

function isAlive(pid: number): boolean {
  if (pid === process.pid) return false; // not held here (checked first): an earlier process's pid
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoOf(err) === 'EPERM';
  }
}

/** Creates the lock file with `content` unless it exists; true when created. */
function createExclusive(file: string, content: string): boolean {
  const draft = `${file}.${uniqueSuffix()}`;
  writeFileSync(draft, content, { mode: 0o600 });
  try {
    linkSync(draft, file);
    return true;
  } catch (err) {
    if (errnoOf(err) === 'EEXIST') return false;
    throw err;
  } finally {
    unlinkSync(draft);
  }
}

/** Removes a stale lock whose content is `stale`; leaves (or puts back) any other. */
function removeStale(file: string, stale: string): void {
  const aside = `${file}.stale.${uniqueSuffix()}`;
  try {
    renameSync(file, aside);
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return; // already gone: the next attempt creates it
    throw err;
  }
  try {
    if (readFileSync(aside, 'utf8') !== stale) linkSync(aside, file); // a live owner's: put it back
  } catch (err) {
    if (errnoOf(err) !== 'EEXIST') throw err;
  } finally {
    unlinkSync(aside);
  }
}

/** The exclusive claim of one server on its data directory. */
export class DataDirLock {
  /** The lock file's path. */
  readonly file: string;
  readonly #content: string;
  #held = true;

  private constructor(file: string, content: string) {
    this.file = file;
    this.#content = content;
  }

  /**
   * Takes the lock of `dataDir` (which must exist), taking over one left by a dead process.
   * Throws DataDirLockedError when a live server holds it.
   */
  static acquire(dataDir: string): DataDirLock {
    const file = join(dataDir, LOCK_FILE);
    if (heldHere.has(file)) throw new DataDirLockedError(dataDir, file, process.pid);
    const content = `${process.pid}\n`;
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      if (createExclusive(file, content)) {
        heldHere.add(file);
        return new DataDirLock(file, content);
      }
      const existing = readLock(file);
      if (existing === undefined) continue; // released between the two calls
      const owner = pidOf(existing);
      if (owner !== undefined && isAlive(owner)) throw new DataDirLockedError(dataDir, file, owner);
      removeStale(file, existing);
    }
    throw new Error(`cannot take the lock ${file}: other servers keep taking it (${ATTEMPTS} attempts)`);
  }

  /** Removes the lock file if it is still this lock's. Idempotent. */
  release(): void {
    if (!this.#held) return;
    this.#held = false;
    heldHere.delete(this.file);
    if (readLock(this.file) === this.#content) unlinkSync(this.file);
  }
}
