/**
 * MQTT over TLS and secure WebSocket with MQTT.js: round trips at QoS 0/1/2 with a TCP client,
 * SNI and the Host header recorded on the connection, minimum TLS 1.2, and the certificate
 * reload that leaves established connections alone. Certificates come from a test PKI made at
 * test time (test/helpers/certificates.ts) and removed afterwards.
 */
import assert from 'node:assert/strict';
import type { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import mqtt from 'mqtt';
import type { Connection } from '../../src/session/connection.ts';
import { createTestPki, type TestPki } from '../helpers/certificates.ts';
import { addAnonymousBrokers, startServer, type TestServer } from '../helpers/server.ts';

let pki: TestPki;
let ts: TestServer;
before(async () => {
  pki = createTestPki();
  ts = await startServer({ tlsCert: pki.server.certFile, tlsKey: pki.server.keyFile });
  addAnonymousBrokers(ts, 'pubsub', ['b1', 'b2']); // the SNI / Host names below route to them
});
after(async () => {
  await ts?.close();
  pki?.remove();
});

/** The server-side connection of the client with this id. */
function connectionOf(server: TestServer, clientId: string): Connection {
  const found = [...server.server.connections].find((c) => c.clientId === clientId);
  assert.ok(found, `no connection for ${clientId}`);
  return found;
}

/** The certificate a TLS handshake to `port` is served. */
function servedCertificate(port: number): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca: pki.ca.cert, servername: 'localhost' }, () => {
      const cert = socket.getPeerX509Certificate();
      socket.end();
      cert ? resolve(cert) : reject(new Error('no certificate'));
    });
    socket.on('error', reject);
  });
}

async function roundTrips(secure: mqtt.MqttClient, plain: mqtt.MqttClient, prefix: string): Promise<void> {
  await secure.subscribeAsync(`${prefix}/to-secure/#`, { qos: 2 });
  await plain.subscribeAsync(`${prefix}/to-plain/#`, { qos: 2 });
  const atSecure: string[] = [];
  const atPlain: string[] = [];
  secure.on('message', (topic, payload, packet) => atSecure.push(`${topic}=${payload}@${packet.qos}`));
  plain.on('message', (topic, payload, packet) => atPlain.push(`${topic}=${payload}@${packet.qos}`));
  for (const qos of [0, 1, 2] as const) {
    await plain.publishAsync(`${prefix}/to-secure/q${qos}`, 'from tcp', { qos });
    await secure.publishAsync(`${prefix}/to-plain/q${qos}`, 'from tls', { qos });
  }
  const deadline = Date.now() + 5000;
  while ((atSecure.length < 3 || atPlain.length < 3) && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(
    atSecure.sort(),
    [0, 1, 2].map((q) => `${prefix}/to-secure/q${q}=from tcp@${q}`),
  );
  assert.deepEqual(
    atPlain.sort(),
    [0, 1, 2].map((q) => `${prefix}/to-plain/q${q}=from tls@${q}`),
  );
}

describe('MQTT over TLS and WSS with MQTT.js', () => {
  for (const protocolVersion of [4, 5] as const) {
    for (const [scheme, topic, url] of [
      ['mqtts', 'tls', () => ts.tlsUrl],
      ['wss', 'wss', () => ts.wssUrl],
    ] as const) {
      it(`v${protocolVersion} over ${scheme}:// (CA-verified) and a TCP client exchange QoS 0/1/2 both ways`, async () => {
        const secure = await mqtt.connectAsync(url(), {
          protocolVersion,
          ca: pki.ca.cert,
          servername: 'localhost',
          reconnectPeriod: 0,
        });
        const plain = await mqtt.connectAsync(ts.url, { protocolVersion, reconnectPeriod: 0 });
        try {
          await roundTrips(secure, plain, `${topic}/v${protocolVersion}`);
        } finally {
          await Promise.all([secure.endAsync(), plain.endAsync()]);
        }
      });
    }
  }

  it('records the SNI server name on TLS connections, and SNI plus Host on WSS ones', async () => {
    const overTls = await mqtt.connectAsync(ts.tlsUrl, {
      clientId: 'sni-tls',
      ca: pki.ca.cert,
      servername: 'b1.pubsub.localhost',
      reconnectPeriod: 0,
    });
    const wssPort = new URL(ts.wssUrl).port;
    const overWss = await mqtt.connectAsync(`wss://b2.pubsub.localhost:${wssPort}/mqtt`, {
      clientId: 'sni-wss',
      ca: pki.ca.cert,
      reconnectPeriod: 0,
      // The name resolves nowhere: connect to loopback, keep the name for SNI and Host.
      wsOptions: { lookup: (_h: string, o: unknown, cb: (...a: unknown[]) => void) => lookupLoopback(o, cb) },
    } as mqtt.IClientOptions);
    try {
      const tlsInfo = connectionOf(ts, 'sni-tls').info;
      assert.equal(tlsInfo.transport, 'tls');
      assert.equal(tlsInfo.servername, 'b1.pubsub.localhost');
      assert.equal(tlsInfo.remoteAddress, '127.0.0.1');
      const wssInfo = connectionOf(ts, 'sni-wss').info;
      assert.equal(wssInfo.transport, 'wss');
      assert.equal(wssInfo.servername, 'b2.pubsub.localhost');
      assert.equal(wssInfo.host, 'b2.pubsub.localhost');
      assert.equal(wssInfo.clientCertificate, undefined);
    } finally {
      await Promise.all([overTls.endAsync(), overWss.endAsync()]);
    }
  });

  it('refuses TLS 1.1 (minimum TLS 1.2) and keeps serving', async () => {
    const error = await new Promise<NodeJS.ErrnoException>((resolve, reject) => {
      const socket = tlsConnect({
        host: '127.0.0.1',
        port: Number(new URL(ts.tlsUrl).port),
        ca: pki.ca.cert,
        servername: 'localhost',
        minVersion: 'TLSv1',
        maxVersion: 'TLSv1.1',
        ciphers: 'DEFAULT@SECLEVEL=0', // let the client offer TLS 1.1 at all
      });
      socket.once('secureConnect', () => reject(new Error('TLS 1.1 handshake succeeded')));
      socket.once('error', resolve);
    });
    assert.match(`${error.code} ${error.message}`, /alert protocol version|unsupported protocol/i);
    const ok = await mqtt.connectAsync(ts.tlsUrl, {
      ca: pki.ca.cert,
      servername: 'localhost',
      reconnectPeriod: 0,
    });
    await ok.endAsync();
  });
});

function lookupLoopback(options: unknown, callback: (...args: unknown[]) => void): void {
  if (typeof options === 'object' && options !== null && (options as { all?: boolean }).all)
    callback(null, [{ address: '127.0.0.1', family: 4 }]);
  else callback(null, '127.0.0.1', 4);
}

describe('certificate reload (SIGHUP)', () => {
  it('new handshakes get the new certificate; established TLS and WSS connections keep working', async () => {
    const { certFile, keyFile } = pki.copyServer('reload');
    const own = await startServer({ tlsCert: certFile, tlsKey: keyFile });
    try {
      const tlsPort = Number(new URL(own.tlsUrl).port);
      assert.equal((await servedCertificate(tlsPort)).fingerprint256, pki.server.fingerprint256);
      const options = {
        ca: pki.ca.cert,
        servername: 'localhost',
        reconnectPeriod: 0,
        protocolVersion: 5,
      } as const;
      const before = await mqtt.connectAsync(own.tlsUrl, options);
      const beforeWss = await mqtt.connectAsync(own.wssUrl, options);
      await before.subscribeAsync('reload/t', { qos: 1 });

      const renewed = pki.issueServer(certFile, keyFile);
      const served = own.server.reloadTls();
      assert.equal(served.fingerprint256, renewed.fingerprint256);
      assert.equal((await servedCertificate(tlsPort)).fingerprint256, renewed.fingerprint256);
      const wssPort = Number(new URL(own.wssUrl).port);
      assert.equal((await servedCertificate(wssPort)).fingerprint256, renewed.fingerprint256);

      const got = new Promise<string>((resolve) => before.once('message', (_t, p) => resolve(p.toString())));
      await beforeWss.publishAsync('reload/t', 'still here', { qos: 1 });
      assert.equal(await got, 'still here');
      assert.ok(before.connected && beforeWss.connected);
      await Promise.all([before.endAsync(), beforeWss.endAsync()]);
    } finally {
      await own.close();
    }
  });

  it('an unusable certificate on reload is refused and the old one stays in service', async () => {
    const { certFile, keyFile } = pki.copyServer('broken');
    const own = await startServer({ tlsCert: certFile, tlsKey: keyFile });
    try {
      writeFileSync(certFile, 'not a certificate');
      assert.throws(() => own.server.reloadTls(), /unusable/);
      const tlsPort = Number(new URL(own.tlsUrl).port);
      assert.equal((await servedCertificate(tlsPort)).fingerprint256, pki.server.fingerprint256);
    } finally {
      await own.close();
    }
  });
});
