/**
 * Connection storms (src/transport/accept-pacer.ts) and bounded pre-CONNECT state: with
 * `--max-connection-rate`, a storm of a few thousand connections against a `pubsub serve` process
 * is taken on at the rate (read from its metrics while it lasts), not refused, while a client
 * already connected keeps getting its PINGRESP (issue 20's storm acceptance at CI size;
 * `node bench/storm.ts` is the full 20,000); TLS and WebSocket
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
import { makeRoomForFiles } from '../helpers/open-files.ts';
import { seriesValue, sumOfSeries } from '../helpers/prometheus.ts';
import { startServe } from '../helpers/pubsub-process.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const STORM = 3000;
const RATE = 500;

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
  it(`${STORM} connections (v3.1.1 and v5) opened at once against a server process all connect, taken on at the rate (its metrics), while a connected client's pings are all answered`, async (t) => {
    // The storm's last arrival waits about STORM / RATE seconds for its turn: a connect timeout
    // well above that keeps expiry (tested below) out of this test.
    const served = await startServe(t, {
      args: ['--max-connection-rate', String(RATE), '--connect-timeout', '60000'],
    });
    makeRoomForFiles(served.child.process.pid!, STORM + 100, 'the server');
    makeRoomForFiles(process.pid, STORM + 100, 'the test process');
    const port = served.port('mqtt');
    const accepted = async (): Promise<number> => {
      const text = await (await fetch(`${served.apiUrl}/metrics`)).text();
      return sumOfSeries(text, 'pubsub_connections_accepted_total');
    };

    const victim = await RawClient.tcp(port, 5);
    t.after(() => victim.destroy());
    assert.equal((await victim.connect({ clientId: uniqueName('victim') })).reasonCode, 0);
    const base = await accepted();

    let stormDone = false;
    const pings = { sent: 0, answered: 0, maxMs: 0 };
    const pinging = (async () => {
      while (!stormDone) {
        const sent = performance.now();
        pings.sent++;
        victim.send({ type: 'pingreq' });
        assert.equal((await victim.next(WAIT_MS)).type, 'pingresp');
        pings.answered++;
        pings.maxMs = Math.max(pings.maxMs, performance.now() - sent);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    // The server's count of accepted CONNECTs, read every 200 ms: [asked at, answered at, count].
    const samples: [number, number, number][] = [];
    const sampling = (async () => {
      while (!stormDone) {
        const asked = performance.now();
        const count = (await accepted()) - base;
        samples.push([asked, performance.now(), count]);
        await new Promise((r) => setTimeout(r, 200));
      }
    })();

    const clients: RawClient[] = [];
    t.after(() => {
      for (const c of clients) c.destroy();
    });
    const start = performance.now();
    const connacks = await Promise.all(
      Array.from({ length: STORM }, async (_, i) => {
        const version = i % 2 === 0 ? 4 : 5;
        const c = await RawClient.tcp(port, version);
        clients.push(c);
        c.send({
          type: 'connect',
          protocolName: 'MQTT',
          protocolVersion: version,
          clean: true,
          keepalive: 60,
          clientId: `storm-${process.pid}-${i}`,
        });
        return (await c.expect('connack', 60_000)).reasonCode;
      }),
    );
    const elapsed = performance.now() - start;
    stormDone = true;
    await Promise.all([pinging, sampling]);

    assert.equal(connacks.filter((code) => code === 0).length, STORM, 'every connection connected');
    assert.equal((await accepted()) - base, STORM);
    const metrics = await (await fetch(`${served.apiUrl}/metrics`)).text();
    assert.ok(
      seriesValue(metrics, 'pubsub_accepts_paced_total', { listener: 'mqtt' }) > 0,
      'arrivals waited',
    );
    assert.equal(seriesValue(metrics, 'pubsub_accepts_expired_total', { listener: 'mqtt' }), 0);
    // A tenth of a second's burst, then the rate: the storm cannot be taken on faster...
    const burst = RATE / 10;
    assert.ok(elapsed >= ((STORM - burst) / RATE) * 1000 * 0.9, `${elapsed} ms for ${STORM}`);
    // ...and no stretch of it either: between any two readings, at most the burst plus the rate
    // over the time between them (twice that, for CONNECTs handed over before and read after).
    for (let i = 0; i < samples.length; i++)
      for (let j = i + 1; j < samples.length; j++) {
        const [asked] = samples[i]!;
        const [, answered] = samples[j]!;
        const taken = samples[j]![2] - samples[i]![2];
        const allowed = 2 * (burst + (RATE * (answered - asked)) / 1000);
        assert.ok(taken <= allowed, `${taken} CONNECTs accepted within ${(answered - asked).toFixed(0)} ms`);
      }
    assert.ok(samples.length >= 5, `${samples.length} readings of the metrics during the storm`);
    // The victim: every ping answered, and it kept being answered while the storm was on.
    assert.equal(pings.answered, pings.sent);
    assert.ok(
      pings.answered >= 5,
      `${pings.answered} pings answered in ${elapsed.toFixed(0)} ms (longest ${pings.maxMs.toFixed(0)} ms)`,
    );
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
      connectTimeout: 4000, // long enough that all 300 are accepted before the first times out, on a loaded machine too
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
