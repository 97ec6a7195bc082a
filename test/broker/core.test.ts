import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RawClient } from '../helpers/raw-client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

let ts: TestServer;
before(async () => {
  ts = await startServer();
});
after(() => ts.close());

describe('broker core over an in-memory duplex', () => {
  it('v5 empty client id gets an Assigned Client Identifier and receives its own message', async () => {
    const c = RawClient.memory(ts.server, 5);
    const ack = await c.connect({ clientId: '' });
    assert.equal(ack.reasonCode, 0);
    assert.match(ack.properties?.assignedClientIdentifier ?? '', /^auto-/);
    c.send({
      type: 'subscribe',
      packetId: 1,
      subscriptions: [
        { topicFilter: 't/+', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 },
      ],
    });
    assert.deepEqual((await c.expect('suback')).reasonCodes, [1]);
    c.send({
      type: 'publish',
      topic: 't/a',
      payload: Buffer.from('hi'),
      qos: 1,
      retain: false,
      dup: false,
      packetId: 9,
    });
    const first = await c.next();
    const second = await c.next();
    const [pub, ack2] = first.type === 'publish' ? [first, second] : [second, first];
    assert.equal(ack2.type, 'puback');
    assert.equal(pub.type, 'publish');
    if (pub.type === 'publish') {
      assert.equal(pub.payload.toString(), 'hi');
      assert.equal(pub.qos, 1);
      c.send({ type: 'puback', packetId: pub.packetId!, reasonCode: 0 });
    }
    c.end();
  });

  it('QoS 2 re-sent with the same id is acknowledged again but delivered once [MQTT-4.3.3-10]', async () => {
    const sub = RawClient.memory(ts.server, 4);
    await sub.connect({ clientId: 'q2-sub' });
    sub.send({
      type: 'subscribe',
      packetId: 1,
      subscriptions: [
        { topicFilter: 'q2', qos: 2, noLocal: false, retainAsPublished: false, retainHandling: 0 },
      ],
    });
    await sub.expect('suback');
    const pub = RawClient.memory(ts.server, 4);
    await pub.connect({ clientId: 'q2-pub' });
    const p = {
      type: 'publish',
      topic: 'q2',
      payload: Buffer.from('x'),
      qos: 2,
      retain: false,
      dup: false,
      packetId: 5,
    } as const;
    pub.send(p);
    await pub.expect('pubrec');
    pub.send({ ...p, dup: true });
    await pub.expect('pubrec');
    pub.send({ type: 'pubrel', packetId: 5, reasonCode: 0 });
    await pub.expect('pubcomp');
    const got = await sub.expect('publish');
    assert.equal(got.qos, 2);
    sub.send({ type: 'pubrec', packetId: got.packetId!, reasonCode: 0 });
    await sub.expect('pubrel');
    sub.send({ type: 'pubcomp', packetId: got.packetId!, reasonCode: 0 });
    await sub.expectSilence();
    pub.end();
    sub.end();
  });

  it('a persistent session queues QoS 1 while offline and resumes with session present', async () => {
    const a = RawClient.memory(ts.server, 4);
    await a.connect({ clientId: 'persist', clean: false });
    a.send({
      type: 'subscribe',
      packetId: 1,
      subscriptions: [
        { topicFilter: 'p/#', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 },
      ],
    });
    await a.expect('suback');
    a.send({ type: 'disconnect', reasonCode: 0 });
    await a.closed();
    const pub = RawClient.memory(ts.server, 4);
    await pub.connect({ clientId: 'persist-pub' });
    for (let i = 0; i < 3; i++) {
      pub.send({
        type: 'publish',
        topic: 'p/x',
        payload: Buffer.from(`m${i}`),
        qos: 1,
        retain: false,
        dup: false,
        packetId: i + 1,
      });
      await pub.expect('puback');
    }
    const b = RawClient.memory(ts.server, 4);
    const ack = await b.connect({ clientId: 'persist', clean: false });
    assert.equal(ack.sessionPresent, true);
    for (let i = 0; i < 3; i++) {
      const m = await b.expect('publish');
      assert.equal(m.payload.toString(), `m${i}`);
      b.send({ type: 'puback', packetId: m.packetId!, reasonCode: 0 });
    }
    b.end();
    pub.end();
  });

  it('a second connection with the same id takes over: v5 DISCONNECT 0x8E to the old one [MQTT-3.1.4-3]', async () => {
    const old = RawClient.memory(ts.server, 5);
    await old.connect({ clientId: 'dup' });
    const fresh = RawClient.memory(ts.server, 5);
    await fresh.connect({ clientId: 'dup' });
    const d = await old.expect('disconnect');
    assert.equal(d.reasonCode, 0x8e);
    await old.closed();
    fresh.end();
  });

  it('the will is published when the connection drops, not after DISCONNECT', async () => {
    const watcher = RawClient.memory(ts.server, 4);
    await watcher.connect({ clientId: 'watcher' });
    watcher.send({
      type: 'subscribe',
      packetId: 1,
      subscriptions: [
        { topicFilter: 'will/#', qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0 },
      ],
    });
    await watcher.expect('suback');
    const polite = RawClient.memory(ts.server, 4);
    await polite.connect({
      clientId: 'polite',
      will: { topic: 'will/polite', payload: Buffer.from('x'), qos: 0, retain: false },
    });
    polite.send({ type: 'disconnect', reasonCode: 0 });
    await polite.closed();
    const rude = RawClient.memory(ts.server, 4);
    await rude.connect({
      clientId: 'rude',
      will: { topic: 'will/rude', payload: Buffer.from('gone'), qos: 0, retain: false },
    });
    rude.destroy();
    const w = await watcher.expect('publish');
    assert.equal(w.topic, 'will/rude');
    await watcher.expectSilence();
    watcher.end();
  });
});

describe('keep alive limits', () => {
  it('a v5 client asking no keep alive (0) gets Server Keep Alive when a maximum is configured', async () => {
    const limited = await startServer({ maxKeepalive: 30 });
    try {
      const c = RawClient.memory(limited.server, 5);
      const ack = await c.connect({ clientId: 'ka0', keepalive: 0 });
      assert.equal(ack.reasonCode, 0);
      assert.equal(ack.properties?.serverKeepAlive, 30);
      c.end();
    } finally {
      await limited.close();
    }
  });

  it('with the default maximum, keep alive 0 stays 0 (no Server Keep Alive)', async () => {
    const c = RawClient.memory(ts.server, 5);
    const ack = await c.connect({ clientId: 'ka0-default', keepalive: 0 });
    assert.equal(ack.properties?.serverKeepAlive, undefined);
    c.end();
  });
});
