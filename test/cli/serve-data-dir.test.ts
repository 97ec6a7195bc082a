/**
 * `pubsub serve` and its data directory, with real processes: one server per directory (a
 * second refuses to start and leaves the first's api-url alone; a lock left by a killed server
 * is taken over), and the bootstrap admin token never lost: a first start that fails after
 * writing it still leaves `pubsub token show-bootstrap` able to print it, and later starts name
 * its file until a second API token exists.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { runCli, show, spawnServe, startServe, tempDir } from '../helpers/pubsub-process.ts';

/** A loopback port held by another listener until the test ends. */
async function portInUse(t: TestContext): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as { port: number }).port;
}

const reminder = (file: string): string =>
  `pubsub: admin API token in ${file} (mode 0600; \`pubsub token show-bootstrap\` prints it)`;

describe('one pubsub serve per data directory', () => {
  it('a second serve on the same --data-dir exits 1 naming the lock; the first keeps its api-url and serves on', async (t) => {
    const dataDir = join(tempDir(t, 'pubsub-lock-'), 'data');
    const first = await startServe(t, { dataDir });
    const lockFile = join(dataDir, 'pubsub.lock');
    assert.equal(readFileSync(lockFile, 'utf8'), `${first.child.process.pid}\n`);

    const { child: second } = spawnServe(t, { dataDir });
    assert.equal((await second.waitForExit()).code, 1, second.report());
    assert.equal(
      second.stderr,
      `pubsub: cannot start: data directory ${dataDir} is in use by another pubsub server (pid ${first.child.process.pid}, lock file ${lockFile}): stop it, or give this server another --data-dir\n`,
    );
    assert.deepEqual(second.lines, []);

    assert.equal(readFileSync(join(dataDir, 'api-url'), 'utf8'), `${first.apiUrl}\n`);
    const list = await runCli(['namespace', 'list', '--data-dir', dataDir]);
    assert.equal(list.code, 0, show(['namespace', 'list'], list));
    await first.stop();
    assert.equal(existsSync(lockFile), false, 'a clean shutdown removes the lock');
  });

  it('a lock left by a process that is gone is taken over', async (t) => {
    const dataDir = join(tempDir(t, 'pubsub-lock-'), 'data');
    const killed = await startServe(t, { dataDir });
    killed.child.process.kill('SIGKILL');
    await killed.child.exited;
    const lockFile = join(dataDir, 'pubsub.lock');
    assert.equal(readFileSync(lockFile, 'utf8'), `${killed.child.process.pid}\n`, 'SIGKILL left the lock');

    const next = await startServe(t, { dataDir });
    assert.equal(readFileSync(lockFile, 'utf8'), `${next.child.process.pid}\n`);
    await next.stop();

    const exited = spawnSync(process.execPath, ['-e', '']);
    writeFileSync(lockFile, `${exited.pid}\n`);
    const after = await startServe(t, { dataDir });
    assert.equal(readFileSync(lockFile, 'utf8'), `${after.child.process.pid}\n`);
    await after.stop();
  });
});

describe('the bootstrap admin token', () => {
  it('survives a failed first start: show-bootstrap prints it, later starts name its file until a second token exists', async (t) => {
    const dataDir = join(tempDir(t, 'pubsub-bootstrap-'), 'data');
    const tokenFile = join(dataDir, 'admin-token');
    const port = String(await portInUse(t));
    const { child: failed } = spawnServe(t, { dataDir, args: ['--http-port', port] });
    assert.equal((await failed.waitForExit()).code, 1, failed.report());
    assert.match(failed.stderr, /^pubsub: cannot start: .*EADDRINUSE/);
    assert.equal(existsSync(join(dataDir, 'pubsub.lock')), false, 'a failed start releases the lock');

    const shown = await runCli(['token', 'show-bootstrap', '--data-dir', dataDir]);
    assert.equal(shown.code, 0, show(['token', 'show-bootstrap'], shown));
    assert.match(shown.stdout, /^pubsub_\S+\n$/);
    assert.equal(shown.stdout, readFileSync(tokenFile, 'utf8'));
    const byEnv = await runCli(['token', 'show-bootstrap'], { env: { PUBSUB_DATA_DIR: dataDir } });
    assert.equal(byEnv.stdout, shown.stdout, show(['token', 'show-bootstrap'], byEnv));

    const second = await startServe(t, { dataDir });
    assert.equal(second.tokenLine, reminder(tokenFile), second.child.report());
    const created = await runCli(['token', 'create', 'ci', '--data-dir', dataDir]);
    assert.equal(created.code, 0, show(['token', 'create', 'ci'], created));
    await second.stop();

    const third = await startServe(t, { dataDir });
    assert.equal(third.tokenLine, undefined, 'a second token exists: the banner stops naming the file');
    await third.stop();
  });

  it('show-bootstrap without a token file is one clear line and exit 1', async (t) => {
    const dataDir = tempDir(t, 'pubsub-bootstrap-');
    const args = ['token', 'show-bootstrap', '--data-dir', dataDir];
    const r = await runCli(args);
    assert.equal(r.code, 1, show(args, r));
    assert.equal(
      r.stderr,
      `pubsub: no bootstrap admin token: ${join(dataDir, 'admin-token')} not found (\`pubsub serve\` writes it at its first start; --data-dir or PUBSUB_DATA_DIR to point at the server's data directory)\n`,
    );
    assert.equal(r.stdout, '');
  });
});
