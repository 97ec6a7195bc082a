/**
 * Reason codes and Reason Strings: Request Problem Information 0 keeps Reason Strings off
 * acks [MQTT-3.1.2-29]; server-side causes each get their DISCONNECT code: message rate 0x96
 * (`maxPublishRate`), administrative action 0x98 and quota 0x97 through Broker.disconnectClient.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Broker } from '../../src/broker/index.ts';
import { harness } from '../helpers/v5-harness.ts';
import { connectV5, packet, str, Wire } from '../helpers/wire.ts';

const h = harness('reason');

describe('Request Problem Information', () => {
  test('absent (1): a SUBACK failing a filter carries a Reason String; 0: it does not, but DISCONNECT still may [MQTT-3.1.2-29]', async () => {
    const told = await h.connected(5);
    told.send({
      type: 'subscribe',
      packetId: 1,
      subscriptions: [
        { topicFilter: 'a/#/b', qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0 },
      ],
    });
    const withReason = await told.expect('suback');
    assert.deepEqual(withReason.reasonCodes, [0x8f]);
    assert.match(withReason.properties?.reasonString ?? '', /invalid topic filter/);

    const quiet = await h.connected(5, { properties: { requestProblemInformation: 0 } });
    quiet.send({
      type: 'subscribe',
      packetId: 1,
      subscriptions: [
        { topicFilter: 'a/#/b', qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0 },
      ],
    });
    const without = await quiet.expect('suback');
    assert.deepEqual(without.reasonCodes, [0x8f]);
    assert.equal(without.properties, undefined);
    quiet.send({
      type: 'publish',
      topic: 'x',
      payload: Buffer.from([0xc3, 0x28]),
      qos: 1,
      retain: false,
      dup: false,
      packetId: 2,
      properties: { payloadFormatIndicator: 1 },
    });
    const puback = await quiet.next();
    assert.deepEqual(puback, { type: 'puback', packetId: 2, reasonCode: 0x99 });
  });

  test('a Reason String that would exceed the client’s Maximum Packet Size is left out [MQTT-3.9.2-1]', async () => {
    const c = await h.connected(5, { properties: { maximumPacketSize: 16 } });
    c.send({
      type: 'subscribe',
      packetId: 1,
      subscriptions: [
        { topicFilter: 'a/#/b', qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0 },
      ],
    });
    const ack = await c.expect('suback');
    assert.deepEqual(ack.reasonCodes, [0x8f]);
    assert.equal(ack.properties, undefined);
  });
});

describe('server-side DISCONNECT causes (section 4.13)', () => {
  test('more PUBLISHes per second than maxPublishRate with publishRateAction disconnect: DISCONNECT 0x96 (literal bytes)', async (t) => {
    const s = await h.serverWith({ maxPublishRate: 5, publishRateAction: 'disconnect' });
    const w = await Wire.tcp(s.port, 5);
    t.after(() => w.destroy());
    await w.handshake(connectV5(h.uid()));
    const publish = packet(0x30, [...str('rate/x'), 0x00, 0x78]);
    w.send(Array.from({ length: 10 }, () => publish).flat());
    await w.expectDisconnect(0x96);
    const ok = await Wire.tcp(s.port, 5);
    t.after(() => ok.destroy());
    await ok.handshake(connectV5(h.uid()));
    ok.send(Array.from({ length: 5 }, () => publish).flat());
    await ok.expectAlive();
  });

  test('Broker.disconnectClient sends DISCONNECT 0x98 (administrative) or 0x97 (quota) with the reason, and the will', async () => {
    // The node that serves the client (in cluster mode each node's Broker serves its own clients).
    const broker = {
      disconnectClient: (...args: Parameters<Broker['disconnectClient']>): boolean =>
        h.nodes().filter((node) => node.defaultBroker.disconnectClient(...args)).length === 1,
    };
    const watcher = await h.connected(5);
    await h.subscribe(watcher, 'admin/will', 0);
    const id = h.uid();
    const kicked = await h.connected(5, {
      clientId: id,
      will: { topic: 'admin/will', payload: Buffer.from('gone'), qos: 0, retain: false },
    });
    assert.equal(broker.disconnectClient(id, 'ADMINISTRATIVE_ACTION', 'removed by operator'), true);
    const d = await kicked.expect('disconnect');
    assert.equal(d.reasonCode, 0x98);
    assert.equal(d.properties?.reasonString, 'removed by operator');
    await kicked.closed();
    assert.equal((await h.receive(watcher)).payload.toString(), 'gone');

    const quota = await h.connected(5, { clientId: `${id}-q` });
    assert.equal(broker.disconnectClient(`${id}-q`, 'QUOTA_EXCEEDED', 'message quota used up'), true);
    assert.equal((await quota.expect('disconnect')).reasonCode, 0x97);
    assert.equal(broker.disconnectClient('nobody-here', 'ADMINISTRATIVE_ACTION', 'x'), false);
    const v3 = await h.connected(4, { clientId: `${id}-v3` });
    assert.equal(broker.disconnectClient(`${id}-v3`, 'ADMINISTRATIVE_ACTION', 'x'), true);
    await v3.closed();
  });
});
