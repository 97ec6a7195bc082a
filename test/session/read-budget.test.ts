/**
 * Fair reading (src/session/read-budget.ts, connection-io.ts): a client pushing many PUBLISH at
 * once is read at most its budget of work (packets + the deliveries they made) per event-loop
 * turn, the rest in later turns in order, so a second client's round trips are served while the
 * flood is still being read. Measured in turns and in the interleaving of events, not in
 * milliseconds: the server runs in this process, and a setImmediate loop here counts what the
 * broker received between two of its check phases.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import mqtt from 'mqtt';
import WebSocket from 'ws';
import { encode, type ProtocolVersion } from '../../src/protocol/index.ts';
import { READ_BUDGET } from '../../src/session/read-budget.ts';
import { until } from '../helpers/child-process.ts';
import { uniqueName } from '../helpers/interop-tools.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const VERSIONS: ProtocolVersion[] = [4, 5];

async function serve(t: TestContext): Promise<TestServer> {
  // Nagle off: a round trip then takes event-loop turns, not a delayed ACK's 40 ms.
  const ts = await startServer({ tcpNoDelay: true });
  t.after(() => ts.close());
  return ts;
}

/** `count` QoS 0 PUBLISH to `topic`, back to back in one buffer. */
function flood(count: number, topic: string, version: ProtocolVersion): Buffer {
  const one = encode(
    { type: 'publish', topic, payload: Buffer.from('x'), qos: 0, retain: false, dup: false },
    version,
  );
  const bytes = Buffer.allocUnsafe(one.length * count);
  for (let i = 0; i < count; i++) one.copy(bytes, i * one.length);
  return bytes;
}

/**
 * Counts, between consecutive check phases of this process's event loop, the QoS 0 PUBLISH the
 * broker received; `max` is the most in one loop iteration.
 */
function perTurn(received: () => number): { max: number; turns: number; stop(): void } {
  const sample = { max: 0, turns: 0, stop: () => {} };
  let last = received();
  let running = true;
  const tick = (): void => {
    if (!running) return;
    const now = received();
    sample.max = Math.max(sample.max, now - last);
    sample.turns++;
    last = now;
    setImmediate(tick);
  };
  setImmediate(tick);
  sample.stop = () => {
    running = false;
  };
  return sample;
}

/** QoS 1 round trips of a second client to its own subscription, one after the other. */
async function roundTrips(client: mqtt.MqttClient, topic: string, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const echoed = new Promise((resolve) => client.once('message', resolve));
    await client.publishAsync(topic, `ping ${i}`, { qos: 1 });
    await echoed;
  }
}

/**
 * One loop iteration can hold the end of one turn's budget (a continuation in the check phase)
 * and the next turn's reading (poll phase): at most two budgets.
 */
const PER_ITERATION = 2 * READ_BUDGET;

describe('read budget: a flooding client gets its share of a turn, not all of it', () => {
  for (const version of VERSIONS) {
    it(`v${version} TCP: 100,000 PUBLISH in one write are read at most ${PER_ITERATION} a loop iteration, and a second client's QoS 1 round trips complete while the flood is still being read`, async (t) => {
      const ts = await serve(t);
      const stats = ts.server.defaultBroker.stats;
      const victim = await mqtt.connectAsync(ts.url, {
        protocolVersion: version,
        clientId: uniqueName('victim'),
        reconnectPeriod: 0,
      });
      t.after(() => victim.endAsync(true));
      await victim.subscribeAsync('fair/victim', { qos: 0 }); // one write a round trip: no Nagle stall on MQTT.js' socket
      const flooder = await RawClient.tcp(ts.port, version);
      t.after(() => flooder.destroy());
      await flooder.connect({ clientId: uniqueName('flooder') });

      const total = 100_000;
      const sample = perTurn(() => stats.received[0]!);
      t.after(() => sample.stop());
      flooder.sendRaw(flood(total, 'fair/flood', version));
      await roundTrips(victim, 'fair/victim', 5);
      const readWhenServed = stats.received[0]!;
      await until(() => stats.received[0] === total, 'the whole flood to be read, in the end');
      sample.stop();
      // Each round trip takes two turns: two budgets of the flood, not the whole of it.
      assert.ok(
        readWhenServed <= total / 2,
        `the victim was served while the flood was read (${readWhenServed} of ${total} read)`,
      );
      assert.ok(sample.max <= PER_ITERATION, `at most ${PER_ITERATION} a turn, saw ${sample.max}`);
      assert.ok(sample.turns >= total / PER_ITERATION, `the flood took ${sample.turns} turns`);
    });
  }

  it('the budget counts deliveries: a flood to 10 subscribers is read 11 times slower per turn', async (t) => {
    const ts = await serve(t);
    const stats = ts.server.defaultBroker.stats;
    const subscribers: RawClient[] = [];
    for (let i = 0; i < 10; i++) {
      const sub = await RawClient.tcp(ts.port, 5);
      t.after(() => sub.destroy());
      await sub.connect({ clientId: uniqueName('sub') });
      sub.send({
        type: 'subscribe',
        packetId: 1,
        subscriptions: [
          { topicFilter: 'fan/#', qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0 },
        ],
      });
      await sub.expect('suback');
      subscribers.push(sub);
    }
    const flooder = await RawClient.tcp(ts.port, 5);
    t.after(() => flooder.destroy());
    await flooder.connect({ clientId: uniqueName('flooder') });
    const total = 20_000;
    const sample = perTurn(() => stats.received[0]!);
    t.after(() => sample.stop());
    flooder.sendRaw(flood(total, 'fan/out', 5));
    await until(() => stats.received[0] === total, 'the whole flood to be read');
    sample.stop();
    const bound = Math.ceil(PER_ITERATION / 11) + 1;
    assert.ok(sample.max <= bound, `at most ${bound} PUBLISH (11 work units each) a turn, saw ${sample.max}`);
  });

  it('WebSocket: a flood in many binary messages is read within the budget too, in order', async (t) => {
    const ts = await serve(t);
    const stats = ts.server.defaultBroker.stats;
    const observer = await mqtt.connectAsync(ts.url, {
      clientId: uniqueName('observer'),
      reconnectPeriod: 0,
    });
    t.after(() => observer.endAsync(true));
    await observer.subscribeAsync('ws/#', { qos: 0 });
    const seen: number[] = [];
    observer.on('message', (_topic, payload) => seen.push(Number(payload.toString())));

    const ws = new WebSocket(ts.wsUrl, 'mqtt');
    t.after(() => ws.terminate());
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const connack = new Promise((resolve) => ws.once('message', resolve));
    ws.send(
      encode(
        {
          type: 'connect',
          protocolName: 'MQTT',
          protocolVersion: 4,
          clean: true,
          keepalive: 60,
          clientId: uniqueName('ws'),
        },
        4,
      ),
    );
    await connack;
    const total = 20_000;
    const packets: Buffer[] = [];
    for (let i = 0; i < total; i++)
      packets.push(
        encode(
          {
            type: 'publish',
            topic: 'ws/seq',
            payload: Buffer.from(String(i)),
            qos: 0,
            retain: false,
            dup: false,
          },
          4,
        ),
      );
    const bytes = Buffer.concat(packets);
    const sample = perTurn(() => stats.received[0]!);
    t.after(() => sample.stop());
    // Messages cut at arbitrary bytes: packets span messages [MQTT-6.0.0-2].
    for (let at = 0; at < bytes.length; at += 16_001) ws.send(bytes.subarray(at, at + 16_001));
    await until(() => stats.received[0] === total, 'the whole flood to be read');
    sample.stop();
    assert.ok(sample.max <= PER_ITERATION, `at most ${PER_ITERATION} a turn, saw ${sample.max}`);
    await until(() => seen.length === total || ws.readyState !== ws.OPEN, 'the observer to get the flood');
    assert.deepEqual(seen.slice(0, 10), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.ok(
      seen.every((n, i) => n === i),
      'every message in the order it was sent',
    );
  });

  it('a takeover of a flooding client is served while the flood is read; the closed flooder is read no further', async (t) => {
    const ts = await serve(t);
    const stats = ts.server.defaultBroker.stats;
    const clientId = uniqueName('flooder');
    const flooder = await RawClient.tcp(ts.port, 5);
    t.after(() => flooder.destroy());
    await flooder.connect({ clientId });
    const total = 100_000;
    flooder.sendRaw(flood(total, 'gone/flood', 5));
    const taker = await RawClient.tcp(ts.port, 5);
    t.after(() => taker.destroy());
    await taker.connect({ clientId }); // [MQTT-3.1.4-3]: the server closes the flooder
    const readAtTakeover = stats.received[0]!;
    await flooder.closed();
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
    assert.ok(
      readAtTakeover < total,
      `the takeover came while the flood was read (${readAtTakeover} of ${total})`,
    );
    assert.equal(stats.received[0], readAtTakeover, 'nothing of the closed connection read after');
    const after = await mqtt.connectAsync(ts.url, { clientId: uniqueName('after'), reconnectPeriod: 0 });
    await after.endAsync();
  });
});
