/**
 * A batch never outgrows NATS's max_payload (issue 18): messages published in one event-loop
 * turn share their subject's batch, and one large message (up to the MQTT maximum packet size,
 * 1 MiB by default, the same as NATS's default max_payload) must not take the smaller ones
 * queued before it down with it. The messages are published on node A through its broker in
 * one turn (what several publishers' reads in one turn do, made deterministic); an MQTT.js
 * subscriber on node B must get them all, in order.
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import mqtt from 'mqtt';
import { Message } from '../../src/router/index.ts';
import { until } from '../helpers/child-process.ts';
import { describeWithTool, natsServer, uniqueName } from '../helpers/interop-tools.ts';
import { type ServerPair, startPair } from '../helpers/server-pair.ts';

describeWithTool('cluster: batches and NATS max_payload', natsServer, () => {
  let pair: ServerPair;
  before(async () => {
    pair = await startPair();
  });
  after(() => pair.close());

  it('small messages before and after a 1,000,000-byte one in the same turn all cross, in order', async (t) => {
    const topic = `${uniqueName('big')}/x`;
    const sub = await mqtt.connectAsync(pair.b.url, { protocolVersion: 5, reconnectPeriod: 0 });
    t.after(() => sub.endAsync(true));
    const got: number[] = [];
    sub.on('message', (_topic, payload) => got.push(payload.length));
    await sub.subscribeAsync(topic, { qos: 0 });
    await pair.settled();
    const sizes = [...Array(10).fill(50_000), 1_000_000, ...Array(10).fill(50_000)] as number[];
    const broker = pair.a.server.defaultBroker;
    for (const size of sizes)
      broker.publish(new Message({ topic, payload: Buffer.alloc(size, 1), qos: 0, retain: false }));
    await until(() => got.length >= sizes.length, `${sizes.length} messages on B`);
    assert.deepEqual(got, sizes);
    assert.equal(pair.a.server.cluster!.stats.dropped, 0);
  });
});
