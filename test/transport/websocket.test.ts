import assert from 'node:assert/strict';
import { get } from 'node:http';
import { connect as netConnect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import WebSocket from 'ws';
import { OPTIONS } from '../../src/config.ts';
import { encode, Parser } from '../../src/protocol/index.ts';
import { forwardedClient, webSocketLimits } from '../../src/transport/ws.ts';
import { type CapturedLog, captureLog } from '../helpers/log-capture.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

let ts: TestServer;
before(async () => {
  ts = await startServer();
});
after(() => ts.close());

const wsBase = (): string => ts.wsUrl.replace(/\/mqtt$/, '');

/** Opens a raw WebSocket; resolves with it once open, or with the HTTP status that refused it. */
function open(
  url: string,
  protocols?: string[],
): Promise<{ ws?: WebSocket; status?: number; protocol?: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols);
    ws.once('open', () => resolve({ ws, protocol: ws.protocol }));
    ws.once('unexpected-response', (_req, res) => {
      resolve({ status: res.statusCode ?? 0 });
      ws.terminate();
    });
    ws.once('error', (err) => {
      if (ws.readyState !== WebSocket.CLOSED) reject(err);
    });
  });
}

function closeCode(ws: WebSocket): Promise<number> {
  return new Promise((resolve) => ws.once('close', (code) => resolve(code)));
}

/** The bytes of a v3.1.1 CONNECT (clean, keep alive 30 s). */
const connectPacket = (clientId: string): Buffer =>
  encode(
    { type: 'connect', protocolName: 'MQTT', protocolVersion: 4, clean: true, keepalive: 30, clientId },
    4,
  );

/** A full QoS 1 exchange through the broker: the server is up and serving. */
async function assertHealthy(): Promise<void> {
  const sub = await mqtt.connectAsync(ts.url, { protocolVersion: 4 });
  const pub = await mqtt.connectAsync(ts.wsUrl, { protocolVersion: 5 });
  await sub.subscribeAsync('health/ws', { qos: 1 });
  const got = new Promise<string>((resolve) => sub.once('message', (_t, p) => resolve(p.toString())));
  await pub.publishAsync('health/ws', 'ok', { qos: 1 });
  assert.equal(await got, 'ok');
  await Promise.all([sub.endAsync(), pub.endAsync()]);
}

describe('MQTT over WebSocket (MQTT 5.0 chapter 6)', () => {
  for (const protocolVersion of [4, 5] as const) {
    it(`MQTT.js v${protocolVersion} over ws and a TCP client exchange QoS 0/1/2 messages both ways`, async () => {
      const overWs = await mqtt.connectAsync(ts.wsUrl, { protocolVersion });
      const overTcp = await mqtt.connectAsync(ts.url, { protocolVersion });
      await overWs.subscribeAsync(`ws-in/${protocolVersion}/#`, { qos: 2 });
      await overTcp.subscribeAsync(`tcp-in/${protocolVersion}/#`, { qos: 2 });
      const atWs: string[] = [];
      const atTcp: string[] = [];
      overWs.on('message', (topic, payload, packet) => atWs.push(`${topic}=${payload}@${packet.qos}`));
      overTcp.on('message', (topic, payload, packet) => atTcp.push(`${topic}=${payload}@${packet.qos}`));
      for (const qos of [0, 1, 2] as const) {
        await overTcp.publishAsync(`ws-in/${protocolVersion}/q${qos}`, 'from tcp', { qos });
        await overWs.publishAsync(`tcp-in/${protocolVersion}/q${qos}`, 'from ws', { qos });
      }
      const deadline = Date.now() + 5000;
      while ((atWs.length < 3 || atTcp.length < 3) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(
        atWs.sort(),
        [0, 1, 2].map((q) => `ws-in/${protocolVersion}/q${q}=from tcp@${q}`),
      );
      assert.deepEqual(
        atTcp.sort(),
        [0, 1, 2].map((q) => `tcp-in/${protocolVersion}/q${q}=from ws@${q}`),
      );
      await Promise.all([overWs.endAsync(), overTcp.endAsync()]);
    });
  }

  it('the path / is accepted as well as /mqtt', async () => {
    const client = await mqtt.connectAsync(`${wsBase()}/`, { protocolVersion: 5 });
    await client.endAsync();
  });

  it('selects the mqtt subprotocol when offered, also among others [MQTT-6.0.0-3]', async () => {
    const { ws, protocol } = await open(ts.wsUrl, ['chat', 'mqtt']);
    assert.equal(protocol, 'mqtt');
    ws!.close();
    const v5 = await open(ts.wsUrl, ['mqttv5']);
    assert.equal(v5.protocol, 'mqttv5');
    v5.ws!.close();
  });

  it('a packet split across frames and several packets in one frame both work [MQTT-6.0.0-2]', async () => {
    const { ws } = await open(ts.wsUrl, ['mqtt']);
    const parser = new Parser({ protocolVersion: 4 });
    const packets: string[] = [];
    ws!.on('message', (data: Buffer) => {
      parser.push(data, (p) => {
        packets.push(p.type);
      });
    });
    const connect = connectPacket('split');
    ws!.send(connect.subarray(0, 5));
    ws!.send(connect.subarray(5));
    const subscribe = encode(
      {
        type: 'subscribe',
        packetId: 1,
        subscriptions: [
          { topicFilter: 'split/t', qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0 },
        ],
      },
      4,
    );
    const publish = encode(
      { type: 'publish', topic: 'split/t', payload: Buffer.from('x'), qos: 0, retain: false, dup: false },
      4,
    );
    ws!.send(Buffer.concat([subscribe, Buffer.from([0xc0, 0x00]), publish]));
    const deadline = Date.now() + 3000;
    while (packets.length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(packets, ['connack', 'suback', 'pingresp', 'publish']);
    ws!.close();
  });
});

describe('WebSocket bad input is refused and the server stays up', () => {
  it('an upgrade on another path gets HTTP 404', async () => {
    assert.equal((await open(`${wsBase()}/other`, ['mqtt'])).status, 404);
    await assertHealthy();
  });

  it('an upgrade offering only non-MQTT subprotocols gets HTTP 400', async () => {
    assert.equal((await open(ts.wsUrl, ['chat', 'graphql-ws'])).status, 400);
    await assertHealthy();
  });

  it('an upgrade offering no subprotocol is accepted by default, refused (400) when strict', async () => {
    const loose = await open(ts.wsUrl);
    assert.ok(loose.ws);
    loose.ws.close();
    const strict = await startServer({ wsRequireSubprotocol: true });
    try {
      assert.equal((await open(strict.wsUrl)).status, 400);
      const ok = await open(strict.wsUrl, ['mqtt']);
      assert.ok(ok.ws);
      ok.ws.close();
    } finally {
      await strict.close();
    }
  });

  it('a text frame closes the connection with 1003 [MQTT-6.0.0-1]', async () => {
    const { ws } = await open(ts.wsUrl, ['mqtt']);
    const code = closeCode(ws!);
    ws!.send('CONNECT please');
    assert.equal(await code, 1003);
    await assertHealthy();
  });

  it('a non-MQTT first frame closes the connection', async () => {
    const { ws } = await open(ts.wsUrl, ['mqtt']);
    const closed = closeCode(ws!);
    ws!.send(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
    await closed;
    await assertHealthy();
  });

  it('a message larger than the maximum packet size closes the connection (1009)', async () => {
    const small = await startServer({ maximumPacketSize: 1024 });
    try {
      const { ws } = await open(small.wsUrl, ['mqtt']);
      const code = closeCode(ws!);
      ws!.send(Buffer.alloc(4096));
      assert.equal(await code, 1009);
    } finally {
      await small.close();
    }
  });

  it('before CONNECT is accepted a frame may hold at most --max-connect-packet-size (1009); after it, --max-packet-size', async () => {
    const limited = await startServer({ maxConnectPacketSize: 4096, maximumPacketSize: 1 << 20 });
    try {
      // A frame over the pre-CONNECT bound is refused from its header, before its payload is
      // buffered: the close frame comes although only part of the payload was ever sent, and
      // the connection ends though the client never answers it.
      const socket = await rawUpgrade(new URL(limited.wsUrl));
      const received: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => received.push(chunk));
      const dropped = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      const header = Buffer.from([0x82, 0xff, 0, 0, 0, 0, 0, 0x0f, 0xde, 0x80, 1, 2, 3, 4]); // binary, masked, 1,040,000 bytes
      socket.write(Buffer.concat([header, Buffer.alloc(100_000)]));
      await within(dropped, 'the connection stayed open');
      const frames = Buffer.concat(received);
      assert.equal(frames[0], 0x88, 'a close frame');
      assert.equal(frames.readUInt16BE(2), 1009);

      // Admitted, a client may send a frame up to the maximum packet size, even one it sent
      // right after its CONNECT without waiting for CONNACK.
      const sub = await mqtt.connectAsync(limited.url, { protocolVersion: 5 });
      await sub.subscribeAsync('big/ws', { qos: 0 });
      const got = new Promise<number>((resolve) => sub.once('message', (_t, p) => resolve(p.length)));
      const { ws } = await open(limited.wsUrl, ['mqtt']);
      const connect = connectPacket('big-ws');
      const publish = encode(
        {
          type: 'publish',
          topic: 'big/ws',
          payload: Buffer.alloc(200_000, 7),
          qos: 0,
          retain: false,
          dup: false,
        },
        4,
      );
      ws!.send(connect);
      ws!.send(publish);
      assert.equal(await within(got, 'the 200 kB PUBLISH was not delivered'), 200_000);
      ws!.close();
      await sub.endAsync();
    } finally {
      await limited.close();
    }
  });

  it('a plain HTTP GET gets 426 Upgrade Required on the MQTT path and 404 elsewhere', async () => {
    const status = (path: string): Promise<number> =>
      new Promise((resolve, reject) => {
        get(`${wsBase().replace('ws:', 'http:')}${path}`, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        }).on('error', reject);
      });
    assert.equal(await status('/mqtt'), 426);
    assert.equal(await status('/nope'), 404);
  });
});

describe('WebSocket fragments and buffered chunks are bounded in proportion to the maximum packet size', () => {
  it('a CONNECT sent as many fragments of one message is still served', async () => {
    const { ws } = await open(ts.wsUrl, ['mqtt']);
    const connack = new Promise<Buffer>((resolve) => ws!.once('message', (data: Buffer) => resolve(data)));
    const bytes = connectPacket('fragmented');
    for (let i = 0; i < bytes.length; i++)
      ws!.send(bytes.subarray(i, i + 1), { fin: i === bytes.length - 1 });
    assert.deepEqual([...(await connack)], [0x20, 0x02, 0x00, 0x00]);
    ws!.close();
  });

  it('one fragment more than the limit closes the connection (1008); others unaffected', async () => {
    const { maxFragments } = webSocketLimits(OPTIONS.maximumPacketSize.default);
    const { ws } = await open(ts.wsUrl, ['mqtt']);
    const code = closeCode(ws!);
    for (let i = 0; i <= maxFragments; i++) ws!.send(Buffer.from([0]), { fin: false });
    assert.equal(await within(code, 'the connection stayed open'), 1008);
    await assertHealthy();
  });

  it('a frame whose payload trickles in a byte per read is closed past the chunk limit (1008)', async () => {
    const maximumPacketSize = 65536;
    const { maxBufferedChunks } = webSocketLimits(maximumPacketSize);
    const small = await startServer({ maximumPacketSize });
    const socket = await rawUpgrade(new URL(small.wsUrl));
    try {
      const received: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => received.push(chunk));
      let closed = false;
      socket.once('close', () => {
        closed = true;
      });
      // A binary frame announcing the largest payload allowed, masked with a zero key.
      const head = Buffer.from([0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
      head.writeUInt32BE(maximumPacketSize, 6);
      socket.write(head);
      // Well past the limit, so that reads the kernel happens to merge cannot hide it.
      for (let sent = 0; sent < 4 * maxBufferedChunks && !closed; sent++) {
        socket.write(Buffer.from([0]));
        await new Promise((r) => setImmediate(r));
      }
      await within(
        new Promise<void>((resolve) => (closed ? resolve() : socket.once('close', () => resolve()))),
        'the connection stayed open',
      );
      const frames = Buffer.concat(received);
      assert.equal(frames[0], 0x88, 'a close frame');
      assert.equal(frames.readUInt16BE(2), 1008);
    } finally {
      socket.destroy(); // else a failing run waits out ws' 30 s closing handshake
      await small.close();
    }
  });
});

/** `done`'s value, or a failure once a bound far past any legitimate wait (5 s) has passed. */
async function within<T>(done: Promise<T>, failure: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(failure)), 5000);
  });
  try {
    return await Promise.race([done, bound]);
  } finally {
    clearTimeout(timer);
  }
}

/** A raw TCP socket past a WebSocket upgrade to `url` (subprotocol mqtt), for writing frames by hand. */
function rawUpgrade(url: URL): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(Number(url.port), url.hostname, () => {
      socket.setNoDelay(true); // each write its own segment, as a trickling client sends them
      socket.write(
        `GET ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n' +
          'Sec-WebSocket-Protocol: mqtt\r\n\r\n',
      );
    });
    socket.on('error', reject);
    socket.once('data', (chunk: Buffer) => {
      if (!chunk.toString('latin1').startsWith('HTTP/1.1 101')) reject(new Error('upgrade refused'));
      else resolve(socket);
    });
  });
}

describe('client address behind a proxy (--ws-trust-proxy)', () => {
  let proxied: TestServer;
  let twoHops: TestServer;
  let log: CapturedLog;
  before(async () => {
    log = captureLog();
    // Behind a proxy allowAnonymous auto says no; these tests are about the address.
    proxied = await startServer({ wsTrustProxy: true, allowAnonymous: 'true' }, { logger: log.logger });
    twoHops = await startServer({ wsTrustProxy: true, wsTrustProxyHops: 2, allowAnonymous: 'true' });
  });
  after(async () => {
    await proxied?.close();
    await twoHops?.close();
  });

  /** The address the broker records for a client sending this X-Forwarded-For (undefined: none). */
  async function recordedAddress(server: TestServer, forwardedFor: string | undefined): Promise<string> {
    const clientId = `xff-${Math.random().toString(36).slice(2)}`;
    const headers = forwardedFor === undefined ? {} : { 'X-Forwarded-For': forwardedFor };
    const client = await mqtt.connectAsync(server.wsUrl, {
      clientId,
      reconnectPeriod: 0,
      wsOptions: { headers },
    } as mqtt.IClientOptions);
    try {
      const found = [...server.server.connections].find((c) => c.clientId === clientId);
      assert.ok(found, `no connection for ${clientId}`);
      return found.info.remoteAddress;
    } finally {
      await client.endAsync();
    }
  }

  it('takes the rightmost entry, the one the proxy appended, not what the client put before it', async () => {
    assert.equal(await recordedAddress(proxied, '6.6.6.6, 127.0.0.9'), '127.0.0.9');
    assert.equal(await recordedAddress(proxied, '127.0.0.9'), '127.0.0.9');
    assert.equal(await recordedAddress(proxied, ' 2001:db8::9 '), '2001:db8::9');
  });

  it('with --ws-trust-proxy-hops 2 takes the second entry from the right', async () => {
    assert.equal(await recordedAddress(twoHops, '6.6.6.6, 127.0.0.7, 127.0.0.9'), '127.0.0.7');
    assert.equal(await recordedAddress(twoHops, '127.0.0.9'), '127.0.0.9');
  });

  it('an entry that is not an IP address is not taken: the socket address is, logged once', async () => {
    const before = log.withMessage(
      'X-Forwarded-For entry is not an IP address; using the socket address',
    ).length;
    assert.equal(await recordedAddress(proxied, '6.6.6.6, not-an-ip<script>'), '127.0.0.1');
    const warnings = log
      .withMessage('X-Forwarded-For entry is not an IP address; using the socket address')
      .slice(before);
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]!.entry, 'not-an-ip<script>');
    assert.equal(await recordedAddress(proxied, '127.0.0.9, '), '127.0.0.1');
  });

  it('without the header the socket address is used', async () => {
    assert.equal(await recordedAddress(proxied, undefined), '127.0.0.1');
  });

  it('duplicate headers count as one list, in order', () => {
    assert.deepEqual(forwardedClient(['6.6.6.6', '10.0.0.1, 127.0.0.9'], 1), { address: '127.0.0.9' });
    assert.deepEqual(forwardedClient(['6.6.6.6', '10.0.0.1, 127.0.0.9'], 2), { address: '10.0.0.1' });
    assert.deepEqual(forwardedClient('127.0.0.9', 16), { address: '127.0.0.9' });
    assert.equal(forwardedClient(undefined, 1), undefined);
  });
});
