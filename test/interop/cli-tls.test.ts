/**
 * `pubsub serve` with TLS as a user runs it: `--tls-self-signed` generates a development
 * certificate into the data directory and prints its fingerprint (and reuses it on the next
 * start), and SIGHUP makes the process serve renewed certificate files without dropping an
 * established connection.
 */
import assert from 'node:assert/strict';
import type { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import mqtt from 'mqtt';
import { createTestPki, type TestPki } from '../helpers/certificates.ts';
import { type RunningServe, spawnServe, startServe, tempDir } from '../helpers/pubsub-process.ts';

const FINGERPRINT =
  /^pubsub: TLS certificate (\S+)(?: \(self-signed, (generated|reused)\))? SHA-256 fingerprint ([0-9A-F:]{95})$/;

let pki: TestPki;
before(() => {
  pki = createTestPki();
});
after(() => pki.remove());

const ENV = { PUBSUB_LOG_LEVEL: 'info' };

interface Started {
  serve: RunningServe;
  tlsPort: number;
  wssUrl: string;
  certFile: string;
  state: string | undefined;
  fingerprint: string;
}

async function serve(t: TestContext, dataDir: string, args: string[]): Promise<Started> {
  const started = await startServe(t, { dataDir, args, env: ENV });
  const banner = await started.child.waitForLine((l) => FINGERPRINT.test(l), 'the certificate banner');
  const [, certFile, state, fingerprint] = FINGERPRINT.exec(banner)!;
  return {
    serve: started,
    tlsPort: started.port('tls'),
    wssUrl: started.urls.wss!,
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

describe('pubsub serve with TLS', () => {
  it('--tls-self-signed generates a certificate into the data dir, prints its fingerprint, and reuses it', async (t) => {
    const dataDir = join(tempDir(t, 'pubsub-cli-tls-'), 'data');
    const first = await serve(t, dataDir, ['--tls-self-signed', 'true']);
    assert.equal(first.state, 'generated');
    assert.equal(first.certFile, join(dataDir, 'tls-self-signed-cert.pem'));
    assert.ok(existsSync(join(dataDir, 'tls-self-signed-key.pem')));
    const served = await servedCertificate(first.tlsPort);
    assert.equal(served.fingerprint256, first.fingerprint);
    assert.ok(served.checkHost('localhost') && served.checkIP('127.0.0.1') && served.checkIP('::1'));
    assert.match(served.subjectAltName ?? '', /DNS:\*\.localhost/);
    await first.serve.child.waitForLine(
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
    await first.serve.stop();

    const second = await serve(t, dataDir, ['--tls-self-signed', 'true']);
    assert.equal(second.state, 'reused');
    assert.equal(second.fingerprint, first.fingerprint);
    await second.serve.stop();
  });

  it('with dataDir :memory: the development certificate lives in a temporary directory removed at exit', async (t) => {
    const started = await serve(t, ':memory:', ['--tls-self-signed', 'true']);
    assert.ok(existsSync(started.certFile), started.certFile);
    await started.serve.stop();
    assert.equal(existsSync(started.certFile), false);
  });

  it('SIGHUP serves renewed certificate files to new handshakes and keeps established connections', async (t) => {
    const { certFile, keyFile } = pki.copyServer('cli-reload');
    const started = await serve(t, ':memory:', ['--tls-cert', certFile, '--tls-key', keyFile]);
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
    const from = started.serve.child.lines.length;
    started.serve.child.process.kill('SIGHUP');
    await started.serve.child.waitForLine(
      (l) => l.includes(renewed.fingerprint256),
      'the reloaded banner',
      from,
    );
    assert.equal((await servedCertificate(started.tlsPort)).fingerprint256, renewed.fingerprint256);
    await client.subscribeAsync('cli/reload', { qos: 1 });
    const got = new Promise<string>((resolve) => client.once('message', (_t, p) => resolve(p.toString())));
    await client.publishAsync('cli/reload', 'same connection', { qos: 1 });
    assert.equal(await got, 'same connection');
    assert.equal(dropped, false);
    await client.endAsync();
    await started.serve.stop();
  });

  it('refuses --tls-client-auth without --tls-ca, with exit code 2', async (t) => {
    const { child } = spawnServe(t, {
      args: ['--tls-self-signed', 'true', '--tls-client-auth', 'require'],
      env: ENV,
    });
    assert.equal((await child.waitForExit()).code, 2, child.report());
    assert.match(child.stderr, /tlsClientAuth require needs tlsCa/);
  });
});
