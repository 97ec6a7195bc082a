/**
 * Connection storms (src/transport/accept-pacer.ts) and bounded pre-CONNECT state: with
 * `--max-connection-rate`, a storm of a few thousand connections is taken on at the rate, not
 * refused, while a client already connected keeps getting its PINGRESP; TLS and WebSocket
 * listeners pace the same way (MQTT.js); an arrival that waited longer than the connect timeout
 * is closed; slow CONNECTs and TLS handshakes that never finish are all closed by the connect
 * timeout, leaving nothing behind.
 */
import assert from 'node:assert/strict';
import { connect as netConnect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { encode } from '../../src/protocol/index.ts';
import { createTestPki, type TestPki } from '../helpers/certificates.ts';
import { until, WAIT_MS } from '../helpers/child-process.ts';
import { uniqueName } from '../helpers/interop-tools.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const STORM = 3000;
const RATE = 1000;

/** A TCP socket to `port`, once connected. */
function tcpSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(port, '127.0.0.1', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Resolves when `socket` has been closed (by the server). */
const closedBy = (socket: Socket): Promise<void> =>
  new Promise((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve())));

describe('a connection storm with --max-connection-rate', () => {
  it(`${STORM} connections opened at once all connect, at the rate, while a connected client's pings are answered`, async (t) => {
    const ts = await startServer({ maxConnectionRate: RATE });
    t.after(() => ts.close());
    const victim = await RawClient.tcp(ts.port, 4);
    t.after(() => victim.destroy());
    assert.equal((await victim.connect({ clientId: uniqueName('victim') })).reasonCode, 0);

    let stormDone = false;
    let pings = 0;
    const pinging = (async () => {
      while (!stormDone) {
        victim.send({ type: 'pingreq' });
        assert.equal((await victim.next(WAIT_MS)).type, 'pingresp');
        pings++;
        await new Promise((r) => setTimeout(r, 50));
      }
    })();

    const clients: RawClient[] = [];
    t.after(() => {
      for (const c of clients) c.destroy();
    });
    const start = Date.now();
    const connacks = await Promise.all(
      Array.from({ length: STORM }, async (_, i) => {
        const c = await RawClient.tcp(ts.port, 4);
        clients.push(c);
        c.send({
          type: 'connect',
          protocolName: 'MQTT',
          protocolVersion: 4,
          clean: true,
          keepalive: 60,
          clientId: `storm-${process.pid}-${i}`,
        });
        return (await c.expect('connack', WAIT_MS)).reasonCode;
      }),
    );
    const elapsed = Date.now() - start;
    stormDone = true;
    await pinging;

    assert.equal(connacks.filter((code) => code === 0).length, STORM, 'every connection connected');
    const tcp = ts.server.listeners.find((l) => l.name === 'mqtt')!;
    assert.ok(tcp.pacer.paced > 0, 'arrivals waited their turn');
    assert.equal(tcp.pacer.expired, 0);
    // A tenth of a second's burst, then the rate: the storm cannot be taken on faster.
    assert.ok(elapsed >= ((STORM - RATE / 10) / RATE) * 1000 * 0.9, `${elapsed} ms for ${STORM}`);
    assert.ok(pings > 0, 'the victim was answered during the storm');
  });

  it('an arrival that waited longer than the connect timeout is closed, unread', async (t) => {
    const ts = await startServer({ maxConnectionRate: 1, connectTimeout: 300 });
    t.after(() => ts.close());
    const sockets = await Promise.all(Array.from({ length: 4 }, () => tcpSocket(ts.port)));
    t.after(() => {
      for (const s of sockets) s.destroy();
    });
    const tcp = ts.server.listeners.find((l) => l.name === 'mqtt')!;
    await Promise.all(sockets.map(closedBy)); // the first by the connect timeout, the rest expired
    await until(() => tcp.pacer.expired >= 2, 'arrivals to expire');
    assert.equal(tcp.pacer.waiting, 0);
  });
});

describe('TLS and WebSocket listeners pace too', () => {
  let pki: TestPki;
  let ts: TestServer;
  before(async () => {
    pki = createTestPki();
    ts = await startServer({
      tlsCert: pki.server.certFile,
      tlsKey: pki.server.keyFile,
      maxConnectionRate: 20,
    });
  });
  after(async () => {
    await ts?.close();
    pki?.remove();
  });

  for (const [listener, url] of [
    ['tls', () => ts.tlsUrl],
    ['ws', () => ts.wsUrl],
    ['wss', () => ts.wssUrl],
  ] as const) {
    it(`${listener}: 30 MQTT.js clients at once all connect, paced`, async () => {
      const clients = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          mqtt.connectAsync(url(), {
            clientId: uniqueName(`${listener}-${i}`),
            reconnectPeriod: 0,
            connectTimeout: WAIT_MS,
            ca: pki.ca.cert,
            servername: 'localhost',
          }),
        ),
      );
      await Promise.all(clients.map((c) => c.endAsync()));
      assert.ok(ts.server.listeners.find((l) => l.name === listener)!.pacer.paced > 0);
    });
  }
});

describe('pre-CONNECT state is bounded by the connect timeout', () => {
  it('300 slow CONNECTs (a byte at a time) and 100 TLS handshakes never begun are all closed; nothing is left', async (t) => {
    const pki = createTestPki();
    t.after(() => pki.remove());
    const ts = await startServer({
      tlsCert: pki.server.certFile,
      tlsKey: pki.server.keyFile,
      connectTimeout: 1000,
    });
    t.after(() => ts.close());
    const tlsPort = Number(new URL(ts.tlsUrl).port);
    const connect = encode(
      {
        type: 'connect',
        protocolName: 'MQTT',
        protocolVersion: 4,
        clean: true,
        keepalive: 60,
        clientId: 'slow',
      },
      4,
    );
    const slow = await Promise.all(Array.from({ length: 300 }, () => tcpSocket(ts.port)));
    const halfOpen = await Promise.all(Array.from({ length: 100 }, () => tcpSocket(tlsPort)));
    const all = [...slow, ...halfOpen];
    t.after(() => {
      for (const s of all) s.destroy();
    });
    for (const s of all) s.on('error', () => {});
    let sent = 0;
    const drip = setInterval(() => {
      if (sent >= connect.length - 1) return; // never the last byte
      for (const s of slow) if (!s.destroyed) s.write(connect.subarray(sent, sent + 1));
      sent++;
    }, 100);
    t.after(() => clearInterval(drip));
    await until(() => ts.server.awaitingConnect.size >= 300, 'the slow sockets to be accepted', WAIT_MS);
    await Promise.all(all.map(closedBy));
    clearInterval(drip);
    await until(() => ts.server.connections.size === 0, 'every connection to be released');
    assert.equal(ts.server.awaitingConnect.size, 0);
  });
});
