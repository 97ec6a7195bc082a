/**
 * `--proxy-protocol` on the TCP and TLS listeners, driven the way HAProxy or an AWS NLB drives
 * them: the header first (for TLS, before the handshake), then the client's own bytes. MQTT.js
 * runs over such a stream and the broker records the address from the header. Connections
 * without a valid header in time are closed and logged once; other clients keep being served.
 */
import assert from 'node:assert/strict';
import { connect as netConnect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import mqtt from 'mqtt';
import { encode } from '../../src/protocol/index.ts';
import type { Connection } from '../../src/session/connection.ts';
import { V2_SIGNATURE } from '../../src/transport/proxy-protocol.ts';
import { createTestPki, type TestPki } from '../helpers/certificates.ts';
import { type CapturedLog, captureLog } from '../helpers/log-capture.ts';
import { addAnonymousBrokers, startServer, type TestServer } from '../helpers/server.ts';

let pki: TestPki;
let ts: TestServer;
let log: CapturedLog;
const HEADER_TIMEOUT_MS = 400;
before(async () => {
  pki = createTestPki();
  log = captureLog();
  ts = await startServer(
    {
      proxyProtocol: true,
      allowAnonymous: 'true', // behind a proxy auto says no; these tests are about the header
      connectTimeout: HEADER_TIMEOUT_MS,
      tlsCert: pki.server.certFile,
      tlsKey: pki.server.keyFile,
    },
    { logger: log.logger },
  );
  addAnonymousBrokers(ts, 'pubsub', ['b7']); // the SNI name below routes to it
});
after(async () => {
  await ts?.close();
  pki?.remove();
});

const tcpPort = (): number => ts.port;
const tlsPort = (): number => Number(new URL(ts.tlsUrl).port);

const v1 = (src: string, srcPort: number): Buffer =>
  Buffer.from(`PROXY TCP4 ${src} 127.0.0.1 ${srcPort} ${tcpPort()}\r\n`, 'latin1');

/** A v2 PROXY TCP6 header with an AWS-style TLV after the addresses. */
function v2Inet6(srcHex: string, srcPort: number): Buffer {
  const block = Buffer.alloc(36);
  Buffer.from(srcHex, 'hex').copy(block, 0);
  block[31] = 1; // destination ::1
  block.writeUInt16BE(srcPort, 32);
  block.writeUInt16BE(tlsPort(), 34);
  const tlvValue = Buffer.from('\x01vpce-0abc', 'latin1');
  const tlv = Buffer.concat([Buffer.from([0xea, 0, tlvValue.length]), tlvValue]);
  const fixed = Buffer.from([0x21, 0x21, 0, 36 + tlv.length]);
  return Buffer.concat([V2_SIGNATURE, fixed, block, tlv]);
}

const V2_LOCAL = Buffer.concat([V2_SIGNATURE, Buffer.from([0x20, 0x00, 0, 0])]);

function connectionOf(clientId: string): Connection {
  const found = [...ts.server.connections].find((c) => c.clientId === clientId);
  assert.ok(found, `no connection for ${clientId}`);
  return found;
}

/** MQTT.js over a TCP (or TLS) connection that first sends `header`, as a proxy would. */
async function mqttBehindProxy(clientId: string, header: Buffer, tls: boolean): Promise<mqtt.MqttClient> {
  const client = new mqtt.MqttClient(
    () => {
      const raw = netConnect(tls ? tlsPort() : tcpPort(), '127.0.0.1');
      raw.write(header);
      if (!tls) return raw;
      return tlsConnect({ socket: raw, ca: pki.ca.cert, servername: 'b7.pubsub.localhost' });
    },
    { clientId, protocolVersion: 5, reconnectPeriod: 0 },
  );
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  return client;
}

/** A QoS 1 round trip through the proxied listener, with a v1 header: the broker still serves. */
async function assertServing(): Promise<void> {
  const sub = await mqttBehindProxy('health-sub', v1('192.0.2.1', 1000), false);
  const pub = await mqttBehindProxy('health-pub', v1('192.0.2.2', 1001), false);
  await sub.subscribeAsync('proxy/health', { qos: 1 });
  const got = new Promise<string>((resolve) => sub.once('message', (_t, p) => resolve(p.toString())));
  await pub.publishAsync('proxy/health', 'ok', { qos: 1 });
  assert.equal(await got, 'ok');
  await Promise.all([sub.endAsync(), pub.endAsync()]);
}

/** Sends `bytes` on a raw TCP connection to `port` and resolves, once the broker closes it, with what it sent back. */
function rawExchange(
  port: number,
  bytes: Buffer[],
): Promise<{ received: Buffer; localPort: number | undefined }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let localPort: number | undefined;
    const socket: Socket = netConnect(port, '127.0.0.1', () => {
      localPort = socket.localPort;
      for (const b of bytes) socket.write(b);
    });
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => {});
    socket.once('close', () => resolve({ received: Buffer.concat(chunks), localPort }));
  });
}

const connectBytes = encode(
  {
    type: 'connect',
    protocolName: 'MQTT',
    protocolVersion: 4,
    clean: true,
    keepalive: 30,
    clientId: 'raw-proxy',
  },
  4,
);

describe('PROXY protocol on the TCP listener', () => {
  it('v1: MQTT.js behind the header is served and the connection carries the address from it', async () => {
    const client = await mqttBehindProxy('proxied-v1', v1('203.0.113.9', 45678), false);
    try {
      const info = connectionOf('proxied-v1').info;
      assert.equal(info.remoteAddress, '203.0.113.9');
      assert.equal(info.remotePort, 45678);
      assert.equal(info.transport, 'tcp');
    } finally {
      await client.endAsync();
    }
    await assertServing();
  });

  it('v2 LOCAL (a proxy health check) uses the socket address', async () => {
    const client = await mqttBehindProxy('proxied-local', V2_LOCAL, false);
    try {
      assert.equal(connectionOf('proxied-local').info.remoteAddress, '127.0.0.1');
    } finally {
      await client.endAsync();
    }
  });

  it('a header split over several writes, with the CONNECT in the same write as its tail, is accepted', async () => {
    const header = v1('198.51.100.77', 5000);
    const received = await new Promise<Buffer>((resolve, reject) => {
      const socket = netConnect(tcpPort(), '127.0.0.1', async () => {
        for (const piece of [header.subarray(0, 3), header.subarray(3, 20)]) {
          socket.write(piece);
          await new Promise((r) => setTimeout(r, 20));
        }
        socket.write(Buffer.concat([header.subarray(20), connectBytes]));
      });
      socket.once('data', (chunk: Buffer) => {
        resolve(chunk);
        socket.end();
      });
      socket.on('error', reject);
    });
    assert.deepEqual([...received], [0x20, 0x02, 0x00, 0x00]); // CONNACK accepted
  });

  it('a v2 header with a TLV arriving a byte per segment is read, the CONNECT after it served', async () => {
    const inet4 = Buffer.alloc(12);
    Buffer.from([192, 0, 2, 44]).copy(inet4, 0);
    Buffer.from([127, 0, 0, 1]).copy(inet4, 4);
    inet4.writeUInt16BE(41000, 8);
    inet4.writeUInt16BE(tcpPort(), 10);
    const tlv = Buffer.concat([Buffer.from([0x04, 0x04, 0x00]), Buffer.alloc(1024)]); // NOOP padding
    const fixed = Buffer.from([0x21, 0x11, 0, 0]);
    fixed.writeUInt16BE(inet4.length + tlv.length, 2);
    const header = Buffer.concat([V2_SIGNATURE, fixed, inet4, tlv]);
    const { received, address } = await new Promise<{ received: Buffer; address: string }>(
      (resolve, reject) => {
        const socket = netConnect(tcpPort(), '127.0.0.1', async () => {
          socket.setNoDelay(true);
          for (let i = 0; i < header.length; i++) {
            socket.write(header.subarray(i, i + 1));
            await new Promise((r) => setImmediate(r));
          }
          socket.write(connectBytes);
        });
        socket.once('data', (chunk: Buffer) => {
          resolve({ received: chunk, address: connectionOf('raw-proxy').info.remoteAddress });
          socket.end();
        });
        socket.on('error', reject);
      },
    );
    assert.deepEqual([...received], [0x20, 0x02, 0x00, 0x00]); // CONNACK accepted
    assert.equal(address, '192.0.2.44');
  });

  for (const [what, bytes, reason] of [
    [
      'a garbage header',
      [Buffer.from('PROXY TCP4 not-an-address 1.2.3.4 1 2\r\n'), connectBytes],
      /invalid PROXY header/,
    ],
    ['no header (a bare MQTT CONNECT)', [connectBytes], /no PROXY protocol signature/],
    ['binary garbage', [Buffer.from([0xde, 0xad, 0xbe, 0xef])], /no PROXY protocol signature/],
  ] as const) {
    it(`${what} closes the connection without a CONNACK, logged once; others unaffected`, async () => {
      const before = log.withMessage('PROXY header refused; closing').length;
      const { received, localPort } = await rawExchange(tcpPort(), [...bytes]);
      assert.equal(received.length, 0);
      const refusals = log.withMessage('PROXY header refused; closing').slice(before);
      assert.equal(refusals.length, 1, JSON.stringify(log.lines));
      assert.match(String(refusals[0]!.reason), reason);
      assert.equal(refusals[0]!.remote, `127.0.0.1:${localPort}`);
      await assertServing();
    });
  }

  it('a connection that closes without sending a byte (a TCP health check) is not logged as refused', async () => {
    const before = log.withMessage('PROXY header refused; closing').length;
    await new Promise<void>((resolve) => {
      const socket = netConnect(tcpPort(), '127.0.0.1', () => socket.end());
      socket.once('close', () => resolve());
    });
    await assertServing();
    assert.deepEqual(log.withMessage('PROXY header refused; closing').slice(before), []);
  });

  it('a connection that sends no complete header in time is closed', async () => {
    const started = Date.now();
    const { received } = await rawExchange(tcpPort(), [Buffer.from('PROXY TCP4 1.2.')]);
    assert.equal(received.length, 0);
    assert.ok(Date.now() - started >= HEADER_TIMEOUT_MS - 50, 'closed by the header timeout');
    assert.ok(log.lines.some((l) => /no complete PROXY header within/.test(String(l.reason))));
    await assertServing();
  });
});

describe('PROXY protocol on the TLS listener', () => {
  it('v2 (TCP6 + TLV) before the handshake: MQTT.js over TLS is served with the header address and SNI', async () => {
    const client = await mqttBehindProxy(
      'proxied-tls',
      v2Inet6('20010db8000000000000000000000042', 61000),
      true,
    );
    try {
      const info = connectionOf('proxied-tls').info;
      assert.equal(info.transport, 'tls');
      assert.equal(info.remoteAddress, '2001:db8::42');
      assert.equal(info.remotePort, 61000);
      assert.equal(info.servername, 'b7.pubsub.localhost');
      await client.subscribeAsync('proxy/tls', { qos: 2 });
      const got = new Promise<string>((resolve) => client.once('message', (_t, p) => resolve(p.toString())));
      await client.publishAsync('proxy/tls', 'through the proxy', { qos: 2 });
      assert.equal(await got, 'through the proxy');
    } finally {
      await client.endAsync();
    }
  });

  it('a TLS handshake without a PROXY header is closed and logged once; others unaffected', async () => {
    const before = log.withMessage('PROXY header refused; closing').length;
    const error = await new Promise<Error | undefined>((resolve) => {
      const socket = tlsConnect({
        host: '127.0.0.1',
        port: tlsPort(),
        ca: pki.ca.cert,
        servername: 'localhost',
      });
      socket.once('secureConnect', () => resolve(undefined));
      socket.once('error', resolve);
    });
    assert.ok(error, 'the handshake must not complete');
    const refusals = log.withMessage('PROXY header refused; closing').slice(before);
    assert.equal(refusals.length, 1);
    assert.equal(refusals[0]!.listener, 'tls');
    await assertServing();
  });
});

describe('without --proxy-protocol', () => {
  it('a PROXY header is not MQTT: the connection is closed', async () => {
    const plain = await startServer();
    try {
      const { received } = await rawExchange(plain.port, [v1('192.0.2.1', 1), connectBytes]);
      assert.equal(received.length, 0);
    } finally {
      await plain.close();
    }
  });
});
