/**
 * Boolean options are switches on `pubsub serve`'s command line, as a user types them:
 * `--tls-self-signed` alone opens the TLS listener with a development certificate, and
 * `--no-tcp-nodelay` turns TCP_NODELAY off on accepted sockets. The socket option is read where
 * it takes effect, in the kernel: strace attached to the server records the setsockopt calls
 * made on each accepted connection, with and without the flag.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { connect as netConnect } from 'node:net';
import { describe, it, type TestContext } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import mqtt from 'mqtt';
import { spawnChild, until } from '../helpers/child-process.ts';
import { describeWithTool, type Tool } from '../helpers/interop-tools.ts';
import { type RunningServe, startServe } from '../helpers/pubsub-process.ts';

/** strace, which can attach to a child of this process (ptrace allowed). */
const strace: Tool = {
  what: 'strace',
  debianPackage: 'strace',
  get available() {
    return spawnSync('strace', ['-V'], { stdio: 'ignore' }).status === 0;
  },
};

/** `pubsub serve` with every listener on an OS-picked port, nothing on disk, and `args`. */
function serve(t: TestContext, args: string[]): Promise<RunningServe> {
  return startServe(t, { dataDir: ':memory:', args });
}

/** Opens a connection (TCP, or TLS with its handshake done) and closes it. */
function touch(port: number, tls: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = tls
      ? tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => socket.end())
      : netConnect(port, '127.0.0.1', () => socket.end());
    socket.on('close', () => resolve());
    socket.on('error', reject);
  });
}

/**
 * The TCP_NODELAY values the server set on the sockets it accepted while `act` ran: one entry per
 * accepted connection, `true`/`false` when setsockopt set it, `undefined` when it was left alone
 * (the kernel's default: Nagle on).
 */
async function noDelayOfAccepted(
  t: TestContext,
  served: RunningServe,
  act: () => Promise<void>,
): Promise<(boolean | undefined)[]> {
  const pid = String(served.child.process.pid);
  // The trace goes to strace's stderr, after its "Process N attached" lines.
  const tracer = spawnChild(t, 'strace', ['-f', '-p', pid, '-e', 'trace=accept4,setsockopt']);
  await until(() => tracer.stderr.includes('attached'), 'strace attached');
  await act();
  tracer.process.kill('SIGINT'); // detaches; the server runs on
  await tracer.waitForExit();
  // An fd number is reused once closed: each accept4 starts a new entry for its fd.
  const accepted: { fd: string; noDelay: boolean | undefined }[] = [];
  for (const line of tracer.stderr.split('\n')) {
    const accept = /accept4\(\d+, .*\) = (\d+)$/.exec(line);
    if (accept) accepted.push({ fd: accept[1]!, noDelay: undefined });
    const set = /setsockopt\((\d+), SOL_TCP, TCP_NODELAY, \[(\d)\]/.exec(line);
    const socket = set && accepted.findLast((a) => a.fd === set[1]);
    if (socket) socket.noDelay = set[2] === '1';
  }
  return accepted.map((a) => a.noDelay);
}

describe('pubsub serve switches', () => {
  it('--tls-self-signed alone opens TLS with a development certificate; --no-tcp-nodelay serves too', async (t) => {
    const served = await serve(t, ['--tls-self-signed', '--no-tcp-nodelay']);
    await served.child.waitForLine((l) => l.includes('(self-signed, generated)'), 'the certificate banner');
    const client = await mqtt.connectAsync(`mqtts://127.0.0.1:${served.port('tls')}`, {
      protocolVersion: 5,
      rejectUnauthorized: false,
      reconnectPeriod: 0,
    });
    await client.subscribeAsync('switches/tls', { qos: 1 });
    const got = new Promise<string>((resolve) => client.once('message', (_t, p) => resolve(`${p}`)));
    await client.publishAsync('switches/tls', 'bare flag', { qos: 1 });
    assert.equal(await got, 'bare flag');
    await client.endAsync();
    await served.stop();
  });

  it('--tls-self-signed false (the explicit form) opens no TLS listener', async (t) => {
    const served = await startServe(t, { dataDir: ':memory:', args: ['--tls-self-signed', 'false'] });
    assert.equal(served.urls.tls, undefined, served.child.report());
    await served.stop();
  });
});

describeWithTool('pubsub serve --no-tcp-nodelay, as the kernel sees it', strace, () => {
  for (const [args, expected] of [
    [['--tls-self-signed'], true],
    [['--tls-self-signed', '--no-tcp-nodelay'], undefined],
    [['--tls-self-signed', '--tcp-nodelay', 'false'], undefined],
  ] as const) {
    it(`${args.join(' ')}: accepted TCP and TLS sockets get TCP_NODELAY ${expected ?? 'left off'}`, async (t) => {
      const served = await serve(t, [...args]);
      const accepted = await noDelayOfAccepted(t, served, async () => {
        await touch(served.port('mqtt'), false);
        await touch(served.port('tls'), true);
      });
      assert.deepEqual(accepted, [expected, expected]);
      await served.stop();
    });
  }
});
