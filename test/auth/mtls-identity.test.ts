/**
 * Certificate identities (issue 6): on a broker with authType MTLS, the verified client
 * certificate authenticates the client, its subject CN is the client id (an empty client id is
 * assigned the CN; another id is refused 0x85), and a client without a certificate is refused
 * (0x87). MTLS_AND_TOKEN admits either a certificate or a token. With `--mtls-client-id-pattern`
 * the client id is the pattern's capture group of the CN, and with `--mtls-and-token both` a
 * client needs a certificate and a token naming the same client. Real MQTT.js clients over TLS,
 * routed to the broker by SNI.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import type { OptionKey } from '../../src/config.ts';
import type { AuthType } from '../../src/store/index.ts';
import { createTestPki, type TestPki } from '../helpers/certificates.ts';
import { pubsubApi, startServer, type TestServer } from '../helpers/server.ts';

/**
 * A TLS server requesting client certificates (the test PKI's CA), with `brokers` in namespace
 * `pubsub`, and MQTT.js v5 clients reaching them by SNI; everything is closed after the suite.
 * Call inside a describe.
 */
function mtlsSuite(overrides: Partial<Record<OptionKey, unknown>>, brokers: Record<string, AuthType>) {
  let pki: TestPki | undefined;
  let ts: TestServer | undefined;
  const clients: mqtt.MqttClient[] = [];
  before(async () => {
    pki = createTestPki();
    ts = await startServer({
      tlsCert: pki.server.certFile,
      tlsKey: pki.server.keyFile,
      tlsCa: pki.ca.certFile,
      tlsClientAuth: 'request',
      ...overrides,
    });
    ts.server.tenancy.createNamespace(ts.accountId, { name: 'pubsub' });
    for (const [name, authType] of Object.entries(brokers))
      ts.server.tenancy.createBroker(ts.accountId, 'pubsub', { name, authType });
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await ts?.close();
    pki?.remove();
  });
  const connect = async (broker: string, opts: mqtt.IClientOptions): Promise<mqtt.MqttClient> => {
    const c = await mqtt.connectAsync(ts!.tlsUrl, {
      protocolVersion: 5,
      reconnectPeriod: 0,
      ca: pki!.ca.cert,
      servername: `${broker}.pubsub.localhost`,
      ...opts,
    });
    clients.push(c);
    return c;
  };
  const refusedWith = async (broker: string, opts: mqtt.IClientOptions, code: number): Promise<void> => {
    await assert.rejects(connect(broker, opts), (err: Error & { code?: number }) => {
      assert.equal(err.code, code, err.message);
      return true;
    });
  };
  return {
    get ts(): TestServer {
      return ts!;
    },
    get pki(): TestPki {
      return pki!;
    },
    connect,
    refusedWith,
  };
}

describe('mutual TLS identities', () => {
  const s = mtlsSuite({}, { certs: 'MTLS', either: 'MTLS_AND_TOKEN' });
  const { connect } = s;
  const withCert = (): mqtt.IClientOptions => ({ cert: s.pki.client.cert, key: s.pki.client.key });
  const sessionIds = (broker: string): string[] => [
    ...[...s.ts.server.tenancy.tenants()].find((t) => t.record.name === broker)!.broker.sessions.keys(),
  ];

  it('an empty client id is assigned the certificate CN, and the client round-trips a message', async () => {
    const c = await connect('certs', { ...withCert(), clientId: '' });
    assert.ok(sessionIds('certs').includes('device-1'));
    const got = new Promise<string>((resolve) => c.once('message', (_t, p) => resolve(`${p}`)));
    await c.subscribeAsync('d/1', { qos: 1 });
    await c.publishAsync('d/1', 'over mTLS', { qos: 1 });
    assert.equal(await got, 'over mTLS');
    const conn = [...s.ts.server.connections].find((x) => x.clientId === 'device-1')!;
    assert.equal(conn.identity?.method, 'certificate');
    assert.equal(conn.identity?.certificate?.fingerprint256, s.pki.client.fingerprint256);
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
      connect('certs', { clientId: '', cert: s.pki.rogueClient.cert, key: s.pki.rogueClient.key }),
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

describe('mutual TLS: a client-id pattern, and certificate and token both required', () => {
  const s = mtlsSuite(
    { mtlsClientIdPattern: 'device-(\\d+)', mtlsAndToken: 'both' },
    { certs: 'MTLS', strict: 'MTLS_AND_TOKEN' },
  );
  const { refusedWith } = s;
  const connect = s.connect;
  const token = async (clientId: string): Promise<string> => {
    const minted = await s.ts.server.tenancy.issueCredentials(s.ts.accountId, 'pubsub', 'strict', {
      number: 1,
      clientIds: [clientId],
      expiration: undefined,
      topicAcl: ['#'],
    });
    return Object.values(minted)[0]!;
  };
  const withCert = (): mqtt.IClientOptions => ({ cert: s.pki.client.cert, key: s.pki.client.key });

  it('the client id is the capture group of the CN: device-1 connects as 1', async () => {
    const c = await connect('certs', { ...withCert(), clientId: '' });
    assert.ok(c.connected);
    const conn = [...s.ts.server.connections].find((x) => x.clientId === '1');
    assert.equal(conn?.identity?.certificate?.subjectCN, 'device-1');
    await refusedWith('certs', { ...withCert(), clientId: 'device-1' }, 0x85);
  });

  it('a CN the pattern does not match names no client (0x87)', async () => {
    const gateway = s.pki.issueClient('gateway', 'gateway-7');
    await refusedWith('certs', { cert: gateway.cert, key: gateway.key, clientId: '' }, 0x87);
  });

  it('both required: certificate alone 0x86, token alone 0x87, both naming one client admitted', async () => {
    const jwt = await token('1');
    await refusedWith('strict', { ...withCert(), clientId: '' }, 0x86);
    await refusedWith('strict', { clientId: '', username: 'x', password: jwt }, 0x87);
    const c = await connect('strict', { ...withCert(), clientId: '', username: 'x', password: jwt });
    assert.ok(c.connected);
    const conn = [...s.ts.server.connections].find(
      (x) => x.clientId === '1' && x.identity?.jti !== undefined,
    );
    assert.equal(conn?.identity?.method, 'certificate+token');
    assert.equal(conn?.identity?.certificate?.fingerprint256, s.pki.client.fingerprint256);
  });

  it("both required: a token for another client than the certificate's is refused (0x87)", async () => {
    const other = await token('2');
    await refusedWith('strict', { ...withCert(), clientId: '', username: 'x', password: other }, 0x87);
  });
});

describe('mutual TLS per broker: each broker maps certificates with its own pattern', () => {
  // The server's pattern is the default; broker `fleet` sets its own through the API.
  const s = mtlsSuite({ httpPort: 0, mtlsClientIdPattern: 'device-(\\d+)' }, { certs: 'MTLS' });
  const api = (method: string, path: string, body?: unknown) =>
    pubsubApi<Record<string, unknown>>(s.ts, method, path, body);
  const cert = (cn: string): mqtt.IClientOptions => {
    const pem = s.pki.issueClient(cn, cn);
    return { cert: pem.cert, key: pem.key, clientId: '' };
  };
  /** The client id the server gave the live connection whose certificate has CN `cn`. */
  const clientIdOf = (cn: string): string | undefined =>
    [...s.ts.server.connections].find((x) => !x.closed && x.identity?.certificate?.subjectCN === cn)
      ?.clientId;

  it('a broker created with mtls_client_id_pattern maps CNs its way, the other broker the server way', async () => {
    const created = await api('POST', '/namespaces/pubsub/brokers', {
      name: 'fleet',
      authType: 'MTLS',
      mtls_client_id_pattern: 'fleet-([a-z]+)-\\d+',
    });
    assert.equal(created.success, true, JSON.stringify(created));
    assert.equal(created.result.mtls_client_id_pattern, 'fleet-([a-z]+)-\\d+');
    assert.equal((await api('GET', '/namespaces/pubsub/brokers/certs')).result.mtls_client_id_pattern, null);

    const fleetCert = cert('fleet-alpha-1');
    const deviceCert = cert('device-7');
    await s.connect('fleet', fleetCert);
    assert.equal(clientIdOf('fleet-alpha-1'), 'alpha');
    await s.refusedWith('certs', fleetCert, 0x87);
    await s.connect('certs', deviceCert);
    assert.equal(clientIdOf('device-7'), '7');
    await s.refusedWith('fleet', deviceCert, 0x87);
  });

  it('PATCH changes the pattern for the next CONNECT; null returns to the server pattern', async () => {
    let patched = await api('PATCH', '/namespaces/pubsub/brokers/fleet', {
      mtls_client_id_pattern: 'fleet-[a-z]+-(\\d+)',
    });
    assert.equal(patched.success, true, JSON.stringify(patched));
    await s.connect('fleet', cert('fleet-beta-42'));
    assert.equal(clientIdOf('fleet-beta-42'), '42');
    patched = await api('PATCH', '/namespaces/pubsub/brokers/fleet', { mtls_client_id_pattern: null });
    assert.equal(patched.result.mtls_client_id_pattern, null);
    await s.connect('fleet', cert('device-8'));
    assert.equal(clientIdOf('device-8'), '8');
    await s.refusedWith('fleet', cert('fleet-gamma-3'), 0x87);
  });

  it('a pattern that is not a regular expression is refused (400, 14009) and nothing changes', async () => {
    const refused = await api('PATCH', '/namespaces/pubsub/brokers/certs', {
      mtls_client_id_pattern: 'device-(',
    });
    assert.equal(refused.success, false);
    assert.equal(refused.errors[0]?.code, 14009);
    assert.equal((await api('GET', '/namespaces/pubsub/brokers/certs')).result.mtls_client_id_pattern, null);
  });
});
