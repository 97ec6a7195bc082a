/**
 * What the TLS and WSS listeners refuse (security review, "Listeners"): a handshake that never
 * comes is closed within --connect-timeout, TLS 1.2 renegotiation is refused and the connection
 * closed, TLS 1.2 offers only ECDHE + AEAD suites (--tls-ciphers), and every refusal leaves the
 * server serving others. Node clients drive the handshakes; test/interop/openssl-tls.test.ts
 * asks the same of `openssl s_client`.
 */
import assert from 'node:assert/strict';
import { connect as netConnect, Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type ConnectionOptions, type TLSSocket, connect as tlsConnect } from 'node:tls';
import mqtt from 'mqtt';
import { encode } from '../../src/protocol/index.ts';
import type { Endpoint } from '../../src/transport/proxy-protocol.ts';
import { refuseHandshake } from '../../src/transport/tls.ts';
import { createTestPki, type TestPki } from '../helpers/certificates.ts';
import { type CapturedLog, captureLog } from '../helpers/log-capture.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const CONNECT_TIMEOUT_MS = 1000;
/** How long a test waits for the broker to close a socket: far past the timeout, short of a hang. */
const CLOSE_BOUND_MS = 8000;

let pki: TestPki;
let ts: TestServer;
let log: CapturedLog;
before(async () => {
  pki = createTestPki();
  log = captureLog();
  ts = await startServer(
    { tlsCert: pki.server.certFile, tlsKey: pki.server.keyFile, connectTimeout: CONNECT_TIMEOUT_MS },
    { logger: log.logger },
  );
});
after(async () => {
  await ts?.close();
  pki?.remove();
});

const portOf = (url: string): number => Number(new URL(url).port);
/** The port of the TLS or the WSS listener (known once `before` has run). */
const portOfListener = (name: 'tls' | 'wss'): number => portOf(name === 'tls' ? ts.tlsUrl : ts.wssUrl);

/** A QoS 1 round trip over TLS and over WSS: the listeners still serve. */
async function assertServing(): Promise<void> {
  const options = {
    ca: pki.ca.cert,
    servername: 'localhost',
    reconnectPeriod: 0,
    protocolVersion: 5,
  } as const;
  const sub = await mqtt.connectAsync(ts.tlsUrl, options);
  const pub = await mqtt.connectAsync(ts.wssUrl, options);
  await sub.subscribeAsync('hardening/health', { qos: 1 });
  const got = new Promise<string>((resolve) => sub.once('message', (_t, p) => resolve(p.toString())));
  await pub.publishAsync('hardening/health', 'ok', { qos: 1 });
  assert.equal(await got, 'ok');
  await Promise.all([sub.endAsync(), pub.endAsync()]);
}

/** A TLS handshake with these client options: the negotiated protocol and cipher, or the error. */
function handshake(
  port: number,
  options: ConnectionOptions,
): Promise<{ protocol: string | null; cipher: string } | { error: NodeJS.ErrnoException }> {
  return new Promise((resolve) => {
    const socket = tlsConnect({
      host: '127.0.0.1',
      port,
      ca: pki.ca.cert,
      servername: 'localhost',
      ...options,
    });
    socket.once('secureConnect', () => {
      resolve({ protocol: socket.getProtocol(), cipher: socket.getCipher().name });
      socket.end();
    });
    socket.once('error', (error) => resolve({ error }));
  });
}

describe('a TLS handshake that never comes', () => {
  for (const name of ['tls', 'wss'] as const) {
    it(`${name}: a TCP connection sending nothing is closed within --connect-timeout and logged once`, async () => {
      const port = portOfListener(name);
      const before = log.withMessage('TLS handshake failed').length;
      const { closed, localPort } = await new Promise<{ closed: boolean; localPort: number | undefined }>(
        (resolve) => {
          let localPort: number | undefined;
          const socket = netConnect(port, '127.0.0.1', () => {
            localPort = socket.localPort;
          });
          socket.on('error', () => {});
          const bound = setTimeout(() => {
            socket.destroy();
            resolve({ closed: false, localPort });
          }, CLOSE_BOUND_MS);
          socket.once('close', () => {
            clearTimeout(bound);
            resolve({ closed: true, localPort });
          });
        },
      );
      assert.ok(closed, `the ${name} listener kept an idle socket open for ${CLOSE_BOUND_MS} ms`);
      const failures = log.withMessage('TLS handshake failed').slice(before);
      assert.equal(failures.length, 1, JSON.stringify(failures));
      assert.equal(failures[0]!.listener, name);
      assert.equal(failures[0]!.reason, 'ERR_TLS_HANDSHAKE_TIMEOUT');
      assert.equal(failures[0]!.remote, `127.0.0.1:${localPort}`);
      await assertServing();
    });
  }
});

describe('a failed handshake is logged with what is known of the peer', () => {
  /** The line `refuseHandshake` logs for a socket that failed with `code`. */
  function refusalLine(code: string, socket: Socket, client?: Endpoint): Record<string, unknown> {
    const captured = captureLog('debug');
    refuseHandshake(captured.logger, 'tls', Object.assign(new Error(code), { code }), socket, client);
    assert.equal(captured.lines.length, 1, JSON.stringify(captured.lines));
    return captured.lines[0]!;
  }

  it('a peer whose address is unknown (it reset mid-handshake): no remote field, not "undefined:undefined"', () => {
    const line = refusalLine('ECONNRESET', new Socket()); // never connected: no address
    assert.equal(line.msg, 'client left during the TLS handshake');
    assert.equal('remote' in line, false, JSON.stringify(line));
    assert.equal(line.reason, 'ECONNRESET');
  });

  it('behind the PROXY protocol: the client the header named', () => {
    const line = refusalLine('ERR_SSL_HTTP_REQUEST', new Socket(), { address: '203.0.113.7', port: 4242 });
    assert.equal(line.msg, 'TLS handshake failed');
    assert.equal(line.remote, '203.0.113.7:4242');
  });
});

/** A TLS 1.2 session with the listener on `port`, once its handshake is done, and its close. */
async function tls12Session(port: number): Promise<{ socket: TLSSocket; closed: Promise<void> }> {
  const socket = tlsConnect({
    host: '127.0.0.1',
    port,
    ca: pki.ca.cert,
    servername: 'localhost',
    maxVersion: 'TLSv1.2',
  });
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise((resolve) => socket.once('secureConnect', resolve));
  return { socket, closed };
}

describe('TLS 1.2 renegotiation', () => {
  it('tls: refused after CONNECT, and the connection is closed', async () => {
    const { socket, closed } = await tls12Session(portOf(ts.tlsUrl));
    socket.write(
      encode(
        {
          type: 'connect',
          protocolName: 'MQTT',
          protocolVersion: 4,
          clean: true,
          keepalive: 0,
          clientId: 'renegotiator',
        },
        4,
      ),
    );
    assert.deepEqual([...(await onceData(socket))], [0x20, 0x02, 0x00, 0x00]);
    assert.ok(brokerHas('renegotiator'));
    const refused = renegotiation(socket);
    assert.match(String((await refused)?.code), /ERR_SSL_NO_RENEGOTIATION/);
    await withinBound(closed, 'the connection stayed open after the refused renegotiation');
    await until(() => !brokerHas('renegotiator'), 'the broker kept the connection');
    await assertServing();
  });

  it('wss: refused, and the connection is closed', async () => {
    const { socket, closed } = await tls12Session(portOf(ts.wssUrl));
    assert.match(String((await renegotiation(socket))?.code), /ERR_SSL_NO_RENEGOTIATION/);
    await withinBound(closed, 'the connection stayed open after the refused renegotiation');
    await assertServing();
  });
});

describe('protocol versions: TLS 1.2 at least', () => {
  for (const name of ['tls', 'wss'] as const)
    it(`${name}: TLS 1.0 and 1.1 are refused with a protocol_version alert; TLS 1.2 and 1.3 are served`, async () => {
      for (const version of ['TLSv1', 'TLSv1.1'] as const) {
        // Node's OpenSSL no longer offers TLS 1.0/1.1 at its default security level: SECLEVEL=0
        // lets this client offer them, so the refusal is the server's.
        const outcome = await handshake(portOfListener(name), {
          minVersion: version,
          maxVersion: version,
          ciphers: 'DEFAULT:@SECLEVEL=0',
        });
        assert.ok('error' in outcome, `${version} was accepted`);
        assert.match(`${outcome.error.code} ${outcome.error.message}`, /protocol version/i);
      }
      const v12 = await handshake(portOfListener(name), { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' });
      assert.ok('protocol' in v12 && v12.protocol === 'TLSv1.2', JSON.stringify(v12));
      const v13 = await handshake(portOfListener(name), { minVersion: 'TLSv1.3' });
      assert.ok('protocol' in v13 && v13.protocol === 'TLSv1.3', JSON.stringify(v13));
      await assertServing();
    });
});

describe('TLS 1.2 cipher suites (--tls-ciphers)', () => {
  for (const name of ['tls', 'wss'] as const) {
    const port = (): number => portOfListener(name);
    it(`${name}: CBC and SHA-1 suites are refused, ECDHE with AES-GCM or ChaCha20 accepted, TLS 1.3 untouched`, async () => {
      for (const cbc of ['ECDHE-ECDSA-AES128-SHA', 'ECDHE-ECDSA-AES256-SHA', 'ECDHE-ECDSA-AES128-SHA256']) {
        const outcome = await handshake(port(), { maxVersion: 'TLSv1.2', ciphers: cbc });
        assert.ok('error' in outcome, `${cbc} was accepted`);
        assert.match(outcome.error.message, /handshake failure/);
      }
      for (const aead of ['ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-CHACHA20-POLY1305']) {
        assert.deepEqual(await handshake(port(), { maxVersion: 'TLSv1.2', ciphers: aead }), {
          protocol: 'TLSv1.2',
          cipher: aead,
        });
      }
      const modern = await handshake(port(), {});
      assert.ok('protocol' in modern && modern.protocol === 'TLSv1.3', JSON.stringify(modern));
    });
  }

  it('the cipher policy survives a certificate reload', async () => {
    ts.server.reloadTls();
    for (const name of ['tls', 'wss'] as const) {
      const outcome = await handshake(portOfListener(name), {
        maxVersion: 'TLSv1.2',
        ciphers: 'ECDHE-ECDSA-AES128-SHA',
      });
      assert.ok('error' in outcome, 'a CBC suite was accepted after the reload');
    }
    await assertServing();
  });

  it('--tls-ciphers replaces the list: a CBC suite named there is accepted', async () => {
    const legacy = await startServer({
      tlsCert: pki.server.certFile,
      tlsKey: pki.server.keyFile,
      tlsCiphers: 'ECDHE-ECDSA-AES128-SHA',
    });
    try {
      const outcome = await handshake(portOf(legacy.tlsUrl), {
        maxVersion: 'TLSv1.2',
        ciphers: 'ECDHE-ECDSA-AES128-SHA',
      });
      assert.deepEqual(outcome, { protocol: 'TLSv1.2', cipher: 'ECDHE-ECDSA-AES128-SHA' });
    } finally {
      await legacy.close();
    }
  });
});

function onceData(socket: TLSSocket): Promise<Buffer> {
  return new Promise((resolve) => socket.once('data', resolve));
}

/** Asks for a TLS 1.2 renegotiation; resolves with the error it ends in (undefined: it succeeded). */
function renegotiation(socket: TLSSocket): Promise<NodeJS.ErrnoException | undefined> {
  return new Promise((resolve) => {
    socket.once('error', resolve);
    socket.renegotiate({}, (err) => resolve(err ?? undefined));
  });
}

function brokerHas(clientId: string): boolean {
  return [...ts.server.connections].some((c) => c.clientId === clientId);
}

async function withinBound(done: Promise<void>, failure: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(failure)), CLOSE_BOUND_MS);
  });
  try {
    await Promise.race([done, bound]);
  } finally {
    clearTimeout(timer);
  }
}

async function until(condition: () => boolean, failure: string): Promise<void> {
  const deadline = Date.now() + CLOSE_BOUND_MS;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(failure);
    await new Promise((r) => setTimeout(r, 10));
  }
}
