/**
 * `pubsub serve` with TLS as a user runs it: `--tls-self-signed` generates a development
 * certificate into the data directory and prints its fingerprint (and reuses it on the next
 * start), and SIGHUP makes the process serve renewed certificate files without dropping an
 * established connection.
 */
import assert from 'node:assert/strict';
import type { X509Certificate } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import mqtt from 'mqtt';
import { CLI, cliEnvironment } from '../cli/run-cli.ts';
import { createTestPki, type TestPki } from '../helpers/certificates.ts';
import { type Child, spawnChild } from './tools.ts';

const FINGERPRINT =
  /^pubsub: TLS certificate (\S+)(?: \(self-signed, (generated|reused)\))? SHA-256 fingerprint ([0-9A-F:]{95})$/;

let pki: TestPki;
before(() => {
  pki = createTestPki();
});
after(() => pki.remove());

function environment(): NodeJS.ProcessEnv {
  return cliEnvironment({ PUBSUB_LOG_LEVEL: 'info' });
}

interface Started {
  child: Child;
  tlsPort: number;
  wssUrl: string;
  certFile: string;
  state: string | undefined;
  fingerprint: string;
}

async function serve(t: TestContext, args: string[]): Promise<Started> {
  const child = spawnChild(
    t,
    process.execPath,
    [
      CLI,
      'serve',
      '--port',
      '0',
      '--ws-port',
      '0',
      '--tls-port',
      '0',
      '--wss-port',
      '0',
      '--http-port',
      '0',
      ...args,
    ],
    { env: environment() },
  );
  const tlsLine = await child.waitForLine(
    (l) => l.startsWith('pubsub: tls listening on '),
    'the TLS listener',
  );
  const wssLine = await child.waitForLine(
    (l) => l.startsWith('pubsub: wss listening on '),
    'the WSS listener',
  );
  const banner = await child.waitForLine((l) => FINGERPRINT.test(l), 'the certificate banner');
  const [, certFile, state, fingerprint] = FINGERPRINT.exec(banner)!;
  return {
    child,
    tlsPort: Number(new URL(tlsLine.slice('pubsub: tls listening on '.length)).port),
    wssUrl: wssLine.slice('pubsub: wss listening on '.length),
    certFile: certFile!,
    state,
    fingerprint: fingerprint!,
  };
}

function servedCertificate(port: number): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const cert = socket.getPeerX509Certificate();
      socket.end();
      cert ? resolve(cert) : reject(new Error('no certificate'));
    });
    socket.on('error', reject);
  });
}

async function stop(started: Started): Promise<void> {
  started.child.process.kill('SIGTERM');
  assert.equal((await started.child.waitForExit(5000)).code, 0, started.child.report());
}

describe('pubsub serve with TLS', () => {
  it('--tls-self-signed generates a certificate into the data dir, prints its fingerprint, and reuses it', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'pubsub-cli-tls-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const dataDir = join(dir, 'data');
    const first = await serve(t, ['--data-dir', dataDir, '--tls-self-signed', 'true']);
    assert.equal(first.state, 'generated');
    assert.equal(first.certFile, join(dataDir, 'tls-self-signed-cert.pem'));
    assert.ok(existsSync(join(dataDir, 'tls-self-signed-key.pem')));
    const served = await servedCertificate(first.tlsPort);
    assert.equal(served.fingerprint256, first.fingerprint);
    assert.ok(served.checkHost('localhost') && served.checkIP('127.0.0.1') && served.checkIP('::1'));
    assert.match(served.subjectAltName ?? '', /DNS:\*\.localhost/);
    await first.child.waitForLine(
      (l) => l.includes('--ignore-certificate-errors-spki-list='),
      'the SPKI hint',
    );
    // MQTT over WSS with the fingerprint as the only trust: a v5 round trip.
    const client = await mqtt.connectAsync(first.wssUrl, {
      protocolVersion: 5,
      rejectUnauthorized: false,
      reconnectPeriod: 0,
    });
    await client.subscribeAsync('cli/tls', { qos: 1 });
    const got = new Promise<string>((resolve) => client.once('message', (_t, p) => resolve(p.toString())));
    await client.publishAsync('cli/tls', 'over wss', { qos: 1 });
    assert.equal(await got, 'over wss');
    await client.endAsync();
    await stop(first);

    const second = await serve(t, ['--data-dir', dataDir, '--tls-self-signed', 'true']);
    assert.equal(second.state, 'reused');
    assert.equal(second.fingerprint, first.fingerprint);
    await stop(second);
  });

  it('with dataDir :memory: the development certificate lives in a temporary directory removed at exit', async (t) => {
    const started = await serve(t, ['--data-dir', ':memory:', '--tls-self-signed', 'true']);
    assert.ok(existsSync(started.certFile), started.certFile);
    await stop(started);
    assert.equal(existsSync(started.certFile), false);
  });

  it('SIGHUP serves renewed certificate files to new handshakes and keeps established connections', async (t) => {
    const certFile = join(pki.dir, 'cli-reload.crt');
    const keyFile = join(pki.dir, 'cli-reload.key');
    copyFileSync(pki.server.certFile, certFile);
    copyFileSync(pki.server.keyFile, keyFile);
    const started = await serve(t, ['--data-dir', ':memory:', '--tls-cert', certFile, '--tls-key', keyFile]);
    assert.equal(started.fingerprint, pki.server.fingerprint256);
    const url = `mqtts://127.0.0.1:${started.tlsPort}`;
    const client = await mqtt.connectAsync(url, {
      ca: pki.ca.cert,
      servername: 'localhost',
      protocolVersion: 5,
      reconnectPeriod: 0,
    });
    let dropped = false;
    client.on('close', () => {
      dropped = true;
    });
    const renewed = pki.issueServer(certFile, keyFile);
    const from = started.child.lines.length;
    started.child.process.kill('SIGHUP');
    await started.child.waitForLine((l) => l.includes(renewed.fingerprint256), 'the reloaded banner', from);
    assert.equal((await servedCertificate(started.tlsPort)).fingerprint256, renewed.fingerprint256);
    await client.subscribeAsync('cli/reload', { qos: 1 });
    const got = new Promise<string>((resolve) => client.once('message', (_t, p) => resolve(p.toString())));
    await client.publishAsync('cli/reload', 'same connection', { qos: 1 });
    assert.equal(await got, 'same connection');
    assert.equal(dropped, false);
    await client.endAsync();
    await stop(started);
  });

  it('refuses --tls-client-auth without --tls-ca, with exit code 2', async (t) => {
    const child = spawnChild(
      t,
      process.execPath,
      [CLI, 'serve', '--tls-self-signed', 'true', '--tls-client-auth', 'require'],
      {
        env: environment(),
      },
    );
    assert.equal((await child.waitForExit()).code, 2, child.report());
    assert.match(child.stderr, /tlsClientAuth require needs tlsCa/);
  });
});
