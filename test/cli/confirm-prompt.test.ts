/**
 * The confirmation of destructive verbs on a real terminal: `script` (util-linux) gives the CLI
 * a pseudo-terminal, the test types the answer. "y" deletes; anything else (or Ctrl-D) cancels
 * with exit 1 and deletes nothing. Without a terminal the verbs refuse unless --yes (tested in
 * namespace-commands and broker-commands).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { after, before, it } from 'node:test';
import { describeWithTool, type Tool } from '../helpers/interop-tools.ts';
import { CLI, cliEnvironment } from '../helpers/pubsub-process.ts';
import { type ApiServer, startApiServer } from './run-cli.ts';

const scriptTool: Tool = {
  what: 'script (a pseudo-terminal)',
  debianPackage: 'bsdutils',
  get available() {
    const probe = spawnSync('script', ['-qec', 'true', '/dev/null'], { stdio: 'ignore', timeout: 10_000 });
    return probe.error === undefined && probe.status === 0;
  },
};

const quote = (arg: string): string => `'${arg.replaceAll("'", `'\\''`)}'`;

/** Runs the CLI on a pseudo-terminal, types `answer` (a line, or Ctrl-D when null) at the prompt. */
function onTerminal(
  api: ApiServer,
  args: string[],
  answer: string | null,
): Promise<{ code: number | null; output: string }> {
  const command = [process.execPath, CLI, ...args].map(quote).join(' ');
  const child = spawn('script', ['-qec', command, '/dev/null'], {
    env: cliEnvironment({ PUBSUB_API_URL: api.server.apiUrl, PUBSUB_API_TOKEN: api.server.adminToken }),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let output = '';
  let answered = false;
  child.stdin.on('error', () => {});
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no exit within 15 s; output so far:\n${output}`));
    }, 15_000);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString('utf8');
      if (!answered && output.includes('[y/N] ')) {
        answered = true;
        child.stdin.write(answer === null ? '\x04' : `${answer}\r`);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('close', (code) => {
      clearTimeout(timer);
      child.stdin.destroy();
      resolve({ code, output });
    });
  });
}

describeWithTool('pubsub delete confirmation on a terminal', scriptTool, () => {
  let api: ApiServer;
  before(async () => {
    api = await startApiServer();
  });
  after(() => api.server.close());

  it('namespace delete asks, and "y" deletes', async () => {
    await api.ok(['namespace', 'create', 'cli-tty-yes']);
    const r = await onTerminal(api, ['namespace', 'delete', 'cli-tty-yes'], 'y');
    assert.equal(r.code, 0, r.output);
    assert.match(
      r.output,
      /Delete namespace cli-tty-yes \(this name will be available for others to register\)\? \[y\/N\] /,
    );
    assert.match(r.output, /Deleted namespace cli-tty-yes\./);
    assert.equal((await api.run(['namespace', 'describe', 'cli-tty-yes'])).code, 1);
  });

  it('broker delete asks, and "n" cancels with exit 1, deleting nothing', async () => {
    await api.ok(['namespace', 'create', 'cli-tty-no']);
    await api.ok(['broker', 'create', 'kept', '--ns', 'cli-tty-no']);
    const r = await onTerminal(api, ['broker', 'delete', 'kept', '--ns', 'cli-tty-no'], 'n');
    assert.equal(r.code, 1, r.output);
    assert.match(r.output, /all existing clients will be disconnected\)\? \[y\/N\] /);
    assert.match(r.output, /pubsub: cancelled: nothing changed/);
    await api.ok(['broker', 'describe', 'kept', '--ns', 'cli-tty-no']);
  });

  it('Ctrl-D at the prompt cancels (exit 1); --yes never asks', async () => {
    await api.ok(['namespace', 'create', 'cli-tty-eof']);
    const r = await onTerminal(api, ['namespace', 'delete', 'cli-tty-eof'], null);
    assert.equal(r.code, 1, r.output);
    assert.match(r.output, /cancelled: nothing changed/);
    await api.ok(['namespace', 'describe', 'cli-tty-eof']);

    const yes = await onTerminal(api, ['namespace', 'delete', 'cli-tty-eof', '--yes'], 'n');
    assert.equal(yes.code, 0, yes.output);
    assert.ok(!yes.output.includes('[y/N]'), yes.output);
  });
});
