/**
 * Mutual TLS (`--tls-client-auth request|require` with `--tls-ca`) on the TLS and WSS listeners:
 * a verified client certificate's subject CN and SHA-256 fingerprint reach ConnectionInfo; on
 * `require`, a client with no certificate or one from another CA is refused before any MQTT byte
 * is read, logged once with its address, and other clients are not disturbed; on `request`, such
 * clients proceed without a clientCertificate.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls';
import mqtt from 'mqtt';
import { encode } from '../../src/protocol/index.ts';
import type { Connection } from '../../src/session/connection.ts';
import { createTestPki, type TestPki } from '../helpers/certificates.ts';
import { type CapturedLog, captureLog } from '../helpers/log-capture.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

let pki: TestPki;
before(() => {
  pki = createTestPki();
});
after(() => pki.remove());

function connectionOf(server: TestServer, clientId: string): Connection {
  const found = [...server.server.connections].find((c) => c.clientId === clientId);
  assert.ok(found, `no connection for ${clientId}`);
  return found;
}

const CONNECT = encode(
  {
    type: 'connect',
    protocolName: 'MQTT',
    protocolVersion: 4,
    clean: true,
    keepalive: 30,
    clientId: 'raw-mtls',
  },
  4,
);

interface Attempt {
  /** The client finished its side of the handshake. */
  handshake: boolean;
  /** Bytes the broker sent back after the CONNECT (a CONNACK when admitted). */
  received: Buffer;
  /** The client's local port, to find the refusal in the log. */
  localPort: number | undefined;
}

/** A TLS client that sends CONNECT right after its handshake and reports what came back before the close. */
function attempt(port: number, options: ConnectionOptions): Promise<Attempt> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let handshake = false;
    const socket = tlsConnect({
      host: '127.0.0.1',
      port,
      ca: pki.ca.cert,
      servername: 'localhost',
      ...options,
    });
    let localPort: number | undefined;
    socket.once('connect', () => {
      localPort = socket.localPort;
    });
    socket.once('secureConnect', () => {
      handshake = true;
      socket.write(CONNECT);
    });
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      socket.end();
    });
    socket.on('error', () => {});
    socket.once('close', () => resolve({ handshake, received: Buffer.concat(chunks), localPort }));
  });
}

interface ClientKeyPair {
  cert?: string;
  key?: string;
}
const clientCert = (): ClientKeyPair => ({ cert: pki.client.cert, key: pki.client.key });
const rogueCert = (): ClientKeyPair => ({ cert: pki.rogueClient.cert, key: pki.rogueClient.key });
const noCert = (): ClientKeyPair => ({});

/** A QoS 1 round trip between a certified TLS client and a TCP client: the broker is serving. */
async function assertServing(ts: TestServer): Promise<void> {
  const secure = await mqtt.connectAsync(ts.tlsUrl, {
    ca: pki.ca.cert,
    servername: 'localhost',
    ...clientCert(),
    reconnectPeriod: 0,
  });
  const plain = await mqtt.connectAsync(ts.url, { reconnectPeriod: 0 });
  await secure.subscribeAsync('mtls/health', { qos: 1 });
  const got = new Promise<string>((resolve) => secure.once('message', (_t, p) => resolve(p.toString())));
  await plain.publishAsync('mtls/health', 'ok', { qos: 1 });
  assert.equal(await got, 'ok');
  await Promise.all([secure.endAsync(), plain.endAsync()]);
}

describe('mutual TLS, require', () => {
  let ts: TestServer;
  let log: CapturedLog;
  before(async () => {
    log = captureLog();
    ts = await startServer(
      {
        tlsCert: pki.server.certFile,
        tlsKey: pki.server.keyFile,
        tlsCa: pki.ca.certFile,
        tlsClientAuth: 'require',
      },
      { logger: log.logger },
    );
  });
  after(() => ts.close());

  it('a verified client certificate puts its subject CN and fingerprint on the connection (TLS and WSS)', async () => {
    const options = { ca: pki.ca.cert, servername: 'localhost', ...clientCert(), reconnectPeriod: 0 };
    const overTls = await mqtt.connectAsync(ts.tlsUrl, {
      ...options,
      clientId: 'mtls-tls',
      protocolVersion: 5,
    });
    const overWss = await mqtt.connectAsync(ts.wssUrl, {
      ...options,
      clientId: 'mtls-wss',
      protocolVersion: 5,
    });
    try {
      const expected = { subjectCN: 'device-1', fingerprint256: pki.client.fingerprint256 };
      assert.deepEqual(connectionOf(ts, 'mtls-tls').info.clientCertificate, expected);
      assert.deepEqual(connectionOf(ts, 'mtls-wss').info.clientCertificate, expected);
      await overTls.subscribeAsync('mtls/both', { qos: 2 });
      const got = new Promise<string>((resolve) => overTls.once('message', (_t, p) => resolve(p.toString())));
      await overWss.publishAsync('mtls/both', 'certified', { qos: 2 });
      assert.equal(await got, 'certified');
    } finally {
      await Promise.all([overTls.endAsync(), overWss.endAsync()]);
    }
  });

  for (const [what, options, reason] of [
    ['no certificate', noCert, /^no client certificate$/],
    ['a certificate from another CA', rogueCert, /^client certificate not verified: /],
  ] as const) {
    it(`a TLS client with ${what} is refused before any MQTT byte, logged once; others unaffected`, async () => {
      const before = log.withMessage('TLS client refused').length;
      const result = await attempt(Number(new URL(ts.tlsUrl).port), options());
      assert.equal(result.received.length, 0, 'no CONNACK for a refused client');
      const refusals = log.withMessage('TLS client refused').slice(before);
      assert.equal(refusals.length, 1, JSON.stringify(log.lines));
      assert.match(String(refusals[0]!.reason), reason);
      assert.equal(refusals[0]!.remote, `127.0.0.1:${result.localPort}`);
      assert.equal(refusals[0]!.listener, 'tls');
      await assertServing(ts);
    });
  }

  it('a WSS client without a certificate is refused before the upgrade; others unaffected', async () => {
    const before = log.withMessage('TLS client refused').length;
    await assert.rejects(
      mqtt.connectAsync(ts.wssUrl, {
        ca: pki.ca.cert,
        servername: 'localhost',
        reconnectPeriod: 0,
        connectTimeout: 5000,
      }),
    );
    const refusals = log.withMessage('TLS client refused').slice(before);
    assert.equal(refusals.length, 1);
    assert.equal(refusals[0]!.listener, 'wss');
    await assertServing(ts);
  });
});

describe('mutual TLS, request', () => {
  let ts: TestServer;
  before(async () => {
    ts = await startServer({
      tlsCert: pki.server.certFile,
      tlsKey: pki.server.keyFile,
      tlsCa: pki.ca.certFile,
      tlsClientAuth: 'request',
    });
  });
  after(() => ts.close());

  for (const [what, options, expected] of [
    ['a verified certificate gets its clientCertificate', clientCert, 'device-1'],
    ['no certificate proceeds without clientCertificate', noCert, undefined],
    ['a certificate from another CA proceeds without clientCertificate', rogueCert, undefined],
  ] as const) {
    it(`a client with ${what}`, async () => {
      const clientId = `request-${expected ?? 'none'}-${Math.random().toString(36).slice(2, 8)}`;
      const client = await mqtt.connectAsync(ts.tlsUrl, {
        clientId,
        ca: pki.ca.cert,
        servername: 'localhost',
        ...options(),
        reconnectPeriod: 0,
      });
      try {
        assert.equal(connectionOf(ts, clientId).info.clientCertificate?.subjectCN, expected);
      } finally {
        await client.endAsync();
      }
    });
  }
});
