/**
 * Certificate identities (issue 6): on a broker with authType MTLS, the verified client
 * certificate authenticates the client, its subject CN is the client id (an empty client id is
 * assigned the CN; another id is refused 0x85), and a client without a certificate is refused
 * (0x87). MTLS_AND_TOKEN admits either a certificate or a token. Real MQTT.js clients over TLS,
 * routed to the broker by SNI.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { createTestPki, type TestPki } from '../helpers/certificates.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

describe('mutual TLS identities', () => {
  let pki: TestPki;
  let ts: TestServer;
  const clients: mqtt.MqttClient[] = [];

  before(async () => {
    pki = createTestPki();
    ts = await startServer({
      tlsCert: pki.server.certFile,
      tlsKey: pki.server.keyFile,
      tlsCa: pki.ca.certFile,
      tlsClientAuth: 'request',
    });
    const { tenancy } = ts.server;
    tenancy.createNamespace(ts.accountId, { name: 'pubsub' });
    tenancy.createBroker(ts.accountId, 'pubsub', { name: 'certs', authType: 'MTLS' });
    tenancy.createBroker(ts.accountId, 'pubsub', { name: 'either', authType: 'MTLS_AND_TOKEN' });
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await ts.close();
    pki.remove();
  });

  const connect = async (broker: string, opts: mqtt.IClientOptions): Promise<mqtt.MqttClient> => {
    const c = await mqtt.connectAsync(ts.tlsUrl, {
      protocolVersion: 5,
      reconnectPeriod: 0,
      ca: pki.ca.cert,
      servername: `${broker}.pubsub.localhost`,
      ...opts,
    });
    clients.push(c);
    return c;
  };
  const withCert = (): mqtt.IClientOptions => ({ cert: pki.client.cert, key: pki.client.key });
  const sessionIds = (broker: string): string[] => [
    ...[...ts.server.tenancy.tenants()].find((t) => t.record.name === broker)!.broker.sessions.keys(),
  ];

  it('an empty client id is assigned the certificate CN, and the client round-trips a message', async () => {
    const c = await connect('certs', { ...withCert(), clientId: '' });
    assert.ok(sessionIds('certs').includes('device-1'));
    const got = new Promise<string>((resolve) => c.once('message', (_t, p) => resolve(`${p}`)));
    await c.subscribeAsync('d/1', { qos: 1 });
    await c.publishAsync('d/1', 'over mTLS', { qos: 1 });
    assert.equal(await got, 'over mTLS');
    const conn = [...ts.server.connections].find((x) => x.clientId === 'device-1')!;
    assert.equal(conn.identity?.method, 'certificate');
    assert.equal(conn.identity?.certificate?.fingerprint256, pki.client.fingerprint256);
  });

  it('a client id other than the CN is refused (0x85)', async () => {
    await assert.rejects(
      connect('certs', { ...withCert(), clientId: 'someone' }),
      (err: Error & { code?: number }) => {
        assert.equal(err.code, 0x85);
        return true;
      },
    );
  });

  it('no certificate, or one from another CA, is refused (0x87) on an MTLS broker', async () => {
    await assert.rejects(connect('certs', { clientId: '' }), (err: Error & { code?: number }) => {
      assert.equal(err.code, 0x87);
      return true;
    });
    await assert.rejects(
      connect('certs', { clientId: '', cert: pki.rogueClient.cert, key: pki.rogueClient.key }),
      (err: Error & { code?: number }) => {
        assert.equal(err.code, 0x87);
        return true;
      },
    );
  });

  it('MTLS_AND_TOKEN admits a certificate, and without one wants a token (0x86)', async () => {
    assert.ok((await connect('either', { ...withCert(), clientId: 'device-1' })).connected);
    await assert.rejects(connect('either', { clientId: '' }), (err: Error & { code?: number }) => {
      assert.equal(err.code, 0x86);
      return true;
    });
  });
});
