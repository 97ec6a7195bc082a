/**
 * Open-file limits of a process, for connection storms: each TCP connection is a file
 * descriptor at both ends, so a storm needs the server's (and the generator's) soft limit above
 * its size. Linux only (`/proc/<pid>/limits`, `/proc/<pid>/fd`).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

export interface OpenFiles {
  soft: number;
  hard: number;
  /** Descriptors open now. */
  open: number;
}

/** The open-files limits of `pid` and how many it holds now (`Infinity` for "unlimited"). */
export function openFiles(pid: number): OpenFiles {
  const line = /^Max open files\s+(\S+)\s+(\S+)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
  const limit = (s: string | undefined): number =>
    s === undefined || s === 'unlimited' ? Infinity : Number(s);
  return { soft: limit(line?.[1]), hard: limit(line?.[2]), open: readdirSync(`/proc/${pid}/fd`).length };
}

/**
 * Makes room for `more` descriptors in process `pid` (ours or a child of ours): raises its soft
 * limit up to its hard limit (never the hard limit itself) with `prlimit`, when that is needed
 * (Node raises its own soft limit to the hard one when it starts, so for a Node process this is
 * mostly the check). Throws a message naming the shortfall when even the hard limit leaves no room.
 */
export function makeRoomForFiles(pid: number, more: number, who: string): OpenFiles {
  let files = openFiles(pid);
  if (files.open + more <= files.soft) return files;
  if (files.open + more <= files.hard) {
    try {
      execFileSync('prlimit', ['--pid', String(pid), `--nofile=${files.hard}:${files.hard}`], {
        stdio: 'pipe',
      });
    } catch (err) {
      throw new Error(
        `${who} needs ${more} more open files (soft limit ${files.soft}, ${files.open} open) and prlimit could not raise it to the hard limit ${files.hard}: ${(err as Error).message}`,
      );
    }
    files = openFiles(pid);
  }
  if (files.open + more > files.soft)
    throw new Error(
      `${who} cannot open ${more} more sockets: ${files.open} files open, open-files limit ${files.soft} (hard ${files.hard}). Raise the hard limit (ulimit -Hn, or LimitNOFILE) or ask for fewer connections.`,
    );
  return files;
}
