/**
 * DataDirLock: one holder per data directory, a lock left by a dead process taken over, a live
 * one refused with its pid, and release removing only the holder's own file.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DataDirLock, DataDirLockedError, LOCK_FILE } from '../../src/store/index.ts';
import { tempDir } from '../helpers/pubsub-process.ts';

/** The pid of a process that has exited. */
function deadPid(): number {
  const done = spawnSync(process.execPath, ['-e', '']);
  assert.equal(done.status, 0);
  return done.pid;
}

describe('data directory lock', () => {
  it('holds the pid while held and is removed on release', (t) => {
    const dir = tempDir(t);
    const lock = DataDirLock.acquire(dir);
    assert.equal(lock.file, join(dir, LOCK_FILE));
    assert.equal(readFileSync(lock.file, 'utf8'), `${process.pid}\n`);
    lock.release();
    assert.equal(existsSync(lock.file), false);
    lock.release();
  });

  it('refuses a second holder in the same process until the first releases', (t) => {
    const dir = tempDir(t);
    const lock = DataDirLock.acquire(dir);
    assert.throws(() => DataDirLock.acquire(dir), DataDirLockedError);
    lock.release();
    DataDirLock.acquire(dir).release();
  });

  it('refuses a lock held by another live process, naming its pid and the file', (t) => {
    const dir = tempDir(t);
    const file = join(dir, LOCK_FILE);
    writeFileSync(file, `${process.ppid}\n`);
    assert.throws(
      () => DataDirLock.acquire(dir),
      (err: unknown) =>
        err instanceof DataDirLockedError &&
        err.ownerPid === process.ppid &&
        err.message.includes(`pid ${process.ppid}`) &&
        err.message.includes(file),
    );
    assert.equal(readFileSync(file, 'utf8'), `${process.ppid}\n`, 'the live lock is left alone');
  });

  it('takes over a lock left by a dead process, or one holding no pid', (t) => {
    for (const stale of [`${deadPid()}\n`, 'not a pid']) {
      const dir = tempDir(t);
      writeFileSync(join(dir, LOCK_FILE), stale);
      const lock = DataDirLock.acquire(dir);
      assert.equal(readFileSync(lock.file, 'utf8'), `${process.pid}\n`);
      lock.release();
    }
  });

  it('release leaves a lock file that another holder wrote since', (t) => {
    const dir = tempDir(t);
    const lock = DataDirLock.acquire(dir);
    writeFileSync(lock.file, `${process.ppid}\n`);
    lock.release();
    assert.equal(readFileSync(lock.file, 'utf8'), `${process.ppid}\n`);
  });
});
