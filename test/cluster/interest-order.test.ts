/**
 * Interest changes cross to the other nodes as each filter's final state per event-loop turn
 * (issue 18): a filter whose last subscription goes and comes back in the same turn (a session
 * replaced by a new one subscribing to the same filter, say) stays wanted on the other nodes.
 * Found by the two-node conformance run: the turn's adds and deletes went as two lists, a peer
 * applied the adds first, so it dropped the filter for good, and messages published on it
 * never reached this node's subscriber.
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import mqtt from 'mqtt';
import { until } from '../helpers/child-process.ts';
import { describeWithTool, natsServer, uniqueName } from '../helpers/interop-tools.ts';
import { collector, type ServerPair, startPair } from '../helpers/server-pair.ts';

describeWithTool('cluster: interest changes within one turn', natsServer, () => {
  let pair: ServerPair;
  before(async () => {
    pair = await startPair();
  });
  after(() => pair.close());

  it("a filter removed and added again in one turn is still wanted: B's messages reach A's subscriber (MQTT.js)", async (t) => {
    const topic = `${uniqueName('again')}/x`;
    const { got } = await collector(t, pair, pair.a.url, topic);
    // The subscriber's entry taken out and put back in one synchronous step: node A's index
    // reports the filter gone, then wanted again, within one turn.
    const index = pair.a.server.defaultBroker.index;
    const [entry] = index.match(topic).subscribers;
    assert.ok(entry !== undefined, 'the subscription is in A’s index');
    index.remove(topic, entry.key);
    index.add(topic, entry.key, entry.values[0]!);
    await pair.settled();
    const pub = await mqtt.connectAsync(pair.b.url, { protocolVersion: 5, reconnectPeriod: 0 });
    t.after(() => pub.endAsync(true));
    await pub.publishAsync(topic, 'after', { qos: 1 });
    await until(() => got.length === 1, 'the message from B on A');
    assert.deepEqual(got, ['after']);
  });
});
