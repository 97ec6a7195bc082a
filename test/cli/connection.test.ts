/**
 * Where the CLI finds the admin API and its token. On the server's machine nothing is set up:
 * a spawned `pubsub serve` writes `<data-dir>/api-url` and `<data-dir>/admin-token`, and the
 * CLI run from the same directory (default ./data), or with only `--data-dir` or
 * PUBSUB_DATA_DIR, finds both. Elsewhere `--url`/PUBSUB_API_URL and
 * PUBSUB_API_TOKEN/`--token-file`, flags winning over the environment. Failures to connect are
 * one clear line and exit 1; malformed URLs are usage errors (exit 2).
 */
import assert from 'node:assert/strict';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runCli, show, startServe, tempDir } from '../helpers/pubsub-process.ts';
import { row, startApiServer } from './run-cli.ts';

/** A loopback port nothing listens on (bound by the OS, then released). */
async function closedPort(): Promise<number> {
  const server = createTcpServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('pubsub management verbs: finding the API', () => {
  it('need no set-up beside `pubsub serve`: ./data, --data-dir or PUBSUB_DATA_DIR lead to URL and token', async (t) => {
    const dir = tempDir(t, 'pubsub-cli-serve-');
    // Default data dir (./data) in the server's working directory, OS-picked ports.
    const serve = await startServe(t, { dataDir: null, cwd: dir });
    const { apiUrl, dataDir } = serve;
    assert.equal(dataDir, join(dir, 'data'));
    assert.equal(statSync(join(dataDir, 'admin-token')).mode & 0o777, 0o600);

    const here = await runCli(['namespace', 'list'], { cwd: dir });
    assert.equal(here.code, 0, show(['namespace', 'list'], here));
    assert.ok(row(here.stdout, 'local'), 'the bootstrap namespace');

    const elsewhere = tempDir(t, 'pubsub-cli-conn-');
    const byFlag = await runCli(['broker', 'list', '--ns', 'local', '--data-dir', dataDir], {
      cwd: elsewhere,
    });
    assert.equal(byFlag.code, 0, show(['broker', 'list'], byFlag));
    assert.ok(row(byFlag.stdout, 'default'), 'the bootstrap broker');

    const byEnv = await runCli(['accounts', '--json'], { cwd: elsewhere, env: { PUBSUB_DATA_DIR: dataDir } });
    assert.equal(byEnv.code, 0, show(['accounts'], byEnv));
    assert.equal(JSON.parse(byEnv.stdout).length, 1);

    // Once the server is gone, the URL it left behind is named in the error.
    await serve.stop();
    const down = await runCli(['namespace', 'list', '--data-dir', dataDir], { cwd: elsewhere });
    assert.equal(down.code, 1, show(['namespace', 'list'], down));
    assert.equal(
      down.stderr,
      `pubsub: cannot reach the admin API at ${apiUrl} (from ${join(dataDir, 'api-url')}): ECONNREFUSED (is \`pubsub serve\` running?)\n`,
    );
  });

  it('an unreachable --url is one clear line and exit 1', async (t) => {
    const port = await closedPort();
    const dir = tempDir(t, 'pubsub-cli-conn-');
    const args = ['namespace', 'list', '--url', `http://127.0.0.1:${port}`, '--data-dir', dir];
    const r = await runCli(args, { env: { PUBSUB_API_TOKEN: 'anything' } });
    assert.equal(r.code, 1, show(args, r));
    assert.equal(
      r.stderr,
      `pubsub: cannot reach the admin API at http://127.0.0.1:${port} (--url): ECONNREFUSED (is \`pubsub serve\` running?)\n`,
    );
    assert.equal(r.stdout, '');
  });

  it('flags win over the environment: --url over PUBSUB_API_URL, --token-file over PUBSUB_API_TOKEN', async (t) => {
    const api = await startApiServer();
    t.after(() => api.server.close());
    const dead = `http://127.0.0.1:${await closedPort()}`;
    const dir = tempDir(t, 'pubsub-cli-conn-');
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, `${api.server.adminToken}\n`, { mode: 0o600 });
    const args = [
      'namespace',
      'list',
      '--url',
      api.server.apiUrl,
      '--token-file',
      tokenFile,
      '--data-dir',
      dir,
    ];
    const r = await runCli(args, { env: { PUBSUB_API_URL: dead, PUBSUB_API_TOKEN: 'wrong' } });
    assert.equal(r.code, 0, show(args, r));

    const wrongFile = join(dir, 'wrong');
    writeFileSync(wrongFile, 'not-a-token\n');
    const refused = await runCli([
      'namespace',
      'list',
      '--url',
      api.server.apiUrl,
      '--token-file',
      wrongFile,
    ]);
    assert.equal(refused.code, 1);
    assert.equal(
      refused.stderr,
      `pubsub: invalid API token (code 10000)\npubsub: the token came from ${wrongFile}\n`,
    );
  });

  it('without a token anywhere it says where it looked (exit 1) and sends nothing', async (t) => {
    const dir = tempDir(t, 'pubsub-cli-conn-');
    mkdirSync(join(dir, 'data'));
    const r = await runCli(['namespace', 'list', '--url', 'http://127.0.0.1:9'], { cwd: dir });
    assert.equal(r.code, 1, show(['namespace', 'list'], r));
    assert.match(r.stderr, /^pubsub: no admin API token: set PUBSUB_API_TOKEN/);
    assert.ok(r.stderr.includes(join('data', 'admin-token')), r.stderr);
  });

  it('a malformed or non-HTTP URL is a usage error (exit 2)', async (t) => {
    const dir = tempDir(t, 'pubsub-cli-conn-');
    for (const url of ['not a url', 'ftp://127.0.0.1/']) {
      const args = ['namespace', 'list', '--url', url, '--data-dir', dir];
      const r = await runCli(args, { env: { PUBSUB_API_TOKEN: 'x' } });
      assert.equal(r.code, 2, show(args, r));
      assert.match(r.stderr, /^pubsub: --url: /);
    }
  });

  it('an HTTP server that is not the admin API is reported as such (exit 1)', async (t) => {
    const other = createServer((_req, res) => {
      res.writeHead(404, { 'content-type': 'text/html' });
      res.end('<h1>not here</h1>');
    });
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => other.close(() => resolve())));
    const url = `http://127.0.0.1:${(other.address() as { port: number }).port}`;
    const dir = tempDir(t, 'pubsub-cli-conn-');
    const r = await runCli(['namespace', 'list', '--url', url, '--data-dir', dir], {
      env: { PUBSUB_API_TOKEN: 'x' },
    });
    assert.equal(r.code, 1, show(['namespace', 'list'], r));
    assert.equal(
      r.stderr,
      `pubsub: unexpected answer from ${url} (--url): HTTP 404, text/html; is this the pubsub admin API?\n`,
    );
  });
});
