/**
 * The MessageStore contract (STYLE.md rule 6): every adapter (memory, SQLite, and later Redis)
 * runs this one suite. `open` gives a store on fresh state; `reopen` gives a store on the same
 * state as a restarted server would see it (for the memory adapter, the same object).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type {
  MessageStore,
  StoredMessage,
  StoredOutbound,
  StoredSessionState,
  StoredSubscription,
} from '../../src/store/message-store.ts';

export interface ContractHarness {
  /** A store on empty state. */
  open(): MessageStore;
  /** The state `store` committed, as a restarted server loads it. */
  reopen(store: MessageStore): MessageStore;
}

const committed = (store: MessageStore): Promise<void> =>
  new Promise((resolve, reject) => store.afterCommit((err) => (err ? reject(err) : resolve())));

/** A stored message for the store tests. */
export function message(topic: string, payload: string, extra: Partial<StoredMessage> = {}): StoredMessage {
  return {
    topic,
    payload: Buffer.from(payload),
    qos: 1,
    retain: false,
    properties: undefined,
    senderId: 'pub',
    receivedAt: 1_700_000_000_000,
    expiresAt: undefined,
    ...extra,
  };
}

/** A queued outbound entry of `payload` for the store tests. */
export function outbound(seq: number, payload: string, extra: Partial<StoredOutbound> = {}): StoredOutbound {
  return {
    seq,
    state: 'queued',
    packetId: 0,
    qos: 1,
    retain: false,
    subscriptionIds: undefined,
    message: message('t/q', payload),
    ...extra,
  };
}

const session = (clientId: string, extra: Partial<StoredSessionState> = {}): StoredSessionState => ({
  clientId,
  expiryInterval: 3600,
  expiresAt: undefined,
  will: undefined,
  ...extra,
});

const subscription = (topicFilter: string, extra: Partial<StoredSubscription> = {}): StoredSubscription => ({
  topicFilter,
  qos: 1,
  noLocal: false,
  retainAsPublished: false,
  retainHandling: 0,
  subscriptionId: undefined,
  ...extra,
});

/** Plain data for deepEqual: Buffers as strings. */
function plain(value: unknown): unknown {
  return JSON.parse(
    JSON.stringify(value, (_k, v) =>
      v && typeof v === 'object' && v.type === 'Buffer' && Array.isArray(v.data)
        ? `buf:${Buffer.from(v.data).toString()}`
        : v,
    ),
  );
}

export function messageStoreContract(name: string, harness: ContractHarness): void {
  describe(`MessageStore contract: ${name}`, () => {
    it('keeps one retained message per topic, with its properties and expiry, per broker', async () => {
      const store = harness.open();
      const props = {
        contentType: 'text/plain',
        payloadFormatIndicator: 1,
        responseTopic: 'reply/here',
        correlationData: Buffer.from([0, 1, 255]),
        userProperties: [
          ['a', '1'],
          ['a', '2'],
        ] as [string, string][],
      };
      store.putRetained('b1', message('a/b', 'first', { retain: true }));
      store.putRetained(
        'b1',
        message('a/b', 'second', { retain: true, properties: props, expiresAt: 1_800_000_000_000 }),
      );
      store.putRetained('b1', message('a/a', 'other', { retain: true, qos: 0, senderId: undefined }));
      store.putRetained('b1', message('gone', 'x', { retain: true }));
      store.deleteRetained('b1', 'gone');
      store.putRetained('b2', message('a/b', 'broker two', { retain: true, qos: 2 }));
      await committed(store);
      const reopened = harness.reopen(store);
      const b1 = reopened.load('b1').retained;
      assert.deepEqual(
        b1.map((m) => [m.topic, `${m.payload}`, m.qos, m.senderId]),
        [
          ['a/a', 'other', 0, undefined],
          ['a/b', 'second', 1, 'pub'],
        ],
      );
      assert.deepEqual(plain(b1[1]!.properties), plain(props));
      assert.ok(Buffer.isBuffer(b1[1]!.properties!.correlationData));
      assert.equal(b1[1]!.expiresAt, 1_800_000_000_000);
      assert.equal(b1[1]!.receivedAt, 1_700_000_000_000);
      assert.equal(b1[0]!.retain, true);
      assert.deepEqual(
        reopened.load('b2').retained.map((m) => `${m.payload}`),
        ['broker two'],
      );
      assert.deepEqual(reopened.load('nobody'), { retained: [], sessions: [] });
    });

    it('keeps a session with its expiry deadline, will, subscriptions and inbound QoS 2 ids', async () => {
      const store = harness.open();
      const will = {
        message: message('will/t', 'bye', { qos: 2, retain: true }),
        publishAt: 1_700_000_060_000,
      };
      store.putSession('b', session('c1', { expiryInterval: 60 }));
      store.putSession('b', session('c1', { expiryInterval: 120, expiresAt: 1_700_000_120_000, will }));
      store.putSubscription('b', 'c1', subscription('a/+', { qos: 2, noLocal: true, subscriptionId: 7 }));
      store.putSubscription(
        'b',
        'c1',
        subscription('$share/g/x/#', { retainAsPublished: true, retainHandling: 2 }),
      );
      store.putSubscription('b', 'c1', subscription('dropped'));
      store.deleteSubscription('b', 'c1', 'dropped');
      store.putSubscription('b', 'c1', subscription('a/+', { qos: 1, subscriptionId: 8 })); // replaces
      store.addInboundQos2('b', 'c1', 5);
      store.addInboundQos2('b', 'c1', 9);
      store.addInboundQos2('b', 'c1', 7);
      store.deleteInboundQos2('b', 'c1', 9);
      store.putSession('b', session('c0', { expiryInterval: 0xffffffff }));
      await committed(store);
      const [c0, c1] = harness.reopen(store).load('b').sessions;
      assert.equal(c0!.clientId, 'c0');
      assert.equal(c0!.expiryInterval, 0xffffffff);
      assert.equal(c0!.expiresAt, undefined);
      assert.equal(c0!.will, undefined);
      assert.equal(c1!.clientId, 'c1');
      assert.equal(c1!.expiryInterval, 120);
      assert.equal(c1!.expiresAt, 1_700_000_120_000);
      assert.deepEqual(plain(c1!.will), plain(will));
      assert.deepEqual(c1!.subscriptions, [
        subscription('$share/g/x/#', { retainAsPublished: true, retainHandling: 2 }),
        subscription('a/+', { qos: 1, subscriptionId: 8 }),
      ]);
      assert.deepEqual(c1!.inboundQos2, [5, 7]);
    });

    it('keeps queued and in-flight outbound messages in queue order with their state', async () => {
      const store = harness.open();
      store.putSession('b', session('c'));
      const seqs = [store.nextSeq(), store.nextSeq(), store.nextSeq(), store.nextSeq()];
      assert.ok(
        seqs.every((s, i) => i === 0 || s > seqs[i - 1]!),
        'nextSeq increases',
      );
      store.putOutbound('b', 'c', outbound(seqs[0]!, 'm0', { qos: 2, state: 'sent', packetId: 11 }));
      store.putOutbound('b', 'c', outbound(seqs[1]!, 'm1', { subscriptionIds: [1, 300000], retain: true }));
      store.putOutbound('b', 'c', outbound(seqs[2]!, 'm2', { qos: 2 }));
      store.putOutbound('b', 'c', outbound(seqs[3]!, 'm3'));
      await committed(store);
      store.setOutboundState('b', 'c', seqs[0]!, 'released', 11);
      store.setOutboundState('b', 'c', seqs[2]!, 'sent', 12);
      store.deleteOutbound('b', 'c', seqs[3]!);
      await committed(store);
      const reopened = harness.reopen(store);
      const [c] = reopened.load('b').sessions;
      assert.deepEqual(
        c!.outbound.map((o) => [
          o.seq,
          o.state,
          o.packetId,
          o.qos,
          o.retain,
          o.subscriptionIds,
          `${o.message.payload}`,
        ]),
        [
          [seqs[0], 'released', 11, 2, false, undefined, 'm0'],
          [seqs[1], 'queued', 0, 1, true, [1, 300000], 'm1'],
          [seqs[2], 'sent', 12, 2, false, undefined, 'm2'],
        ],
      );
      assert.equal(c!.outbound[0]!.message.topic, 't/q');
      assert.equal(c!.outbound[0]!.message.senderId, 'pub');
      assert.ok(
        reopened.nextSeq() > seqs[2]!,
        'after a restart, new sequence numbers follow every stored one',
      );
    });

    it('forgets an outbound message queued and completed before it was committed', async () => {
      const store = harness.open();
      store.putSession('b', session('c'));
      const seq = store.nextSeq();
      store.putOutbound('b', 'c', outbound(seq, 'quick'));
      store.setOutboundState('b', 'c', seq, 'sent', 1);
      store.deleteOutbound('b', 'c', seq);
      const kept = store.nextSeq();
      store.putOutbound('b', 'c', outbound(kept, 'kept'));
      store.setOutboundState('b', 'c', kept, 'sent', 2);
      await committed(store);
      const [c] = harness.reopen(store).load('b').sessions;
      assert.deepEqual(
        c!.outbound.map((o) => [`${o.message.payload}`, o.state, o.packetId]),
        [['kept', 'sent', 2]],
      );
    });

    it('deleting a session removes its subscriptions, messages and ids; a new one starts empty', async () => {
      const store = harness.open();
      store.putSession('b', session('c'));
      store.putSubscription('b', 'c', subscription('x'));
      store.putOutbound('b', 'c', outbound(store.nextSeq(), 'old'));
      store.addInboundQos2('b', 'c', 3);
      store.putSession('b', session('other'));
      await committed(store);
      store.deleteSession('b', 'c');
      store.putSession('b', session('c', { expiryInterval: 5 }));
      await committed(store);
      const sessions = harness.reopen(store).load('b').sessions;
      assert.deepEqual(
        sessions.map((s) => [
          s.clientId,
          s.expiryInterval,
          s.subscriptions.length,
          s.outbound.length,
          s.inboundQos2.length,
        ]),
        [
          ['c', 5, 0, 0, 0],
          ['other', 3600, 0, 0, 0],
        ],
      );
    });

    it('deleting a broker removes its retained messages and sessions, and no other broker’s', async () => {
      const store = harness.open();
      for (const b of ['doomed', 'kept']) {
        store.putRetained(b, message('r', b, { retain: true }));
        store.putSession(b, session('c'));
        store.putSubscription(b, 'c', subscription('#'));
        store.putOutbound(b, 'c', outbound(store.nextSeq(), b));
      }
      await committed(store);
      store.deleteBroker('doomed');
      await committed(store);
      const reopened = harness.reopen(store);
      assert.deepEqual(reopened.load('doomed'), { retained: [], sessions: [] });
      const kept = reopened.load('kept');
      assert.equal(kept.retained.length, 1);
      assert.equal(kept.sessions[0]!.subscriptions.length, 1);
      assert.equal(kept.sessions[0]!.outbound.length, 1);
    });

    it('counts writes and calls afterCommit callbacks in order, once each', async () => {
      const store = harness.open();
      const before = store.writes;
      store.putSession('b', session('c'));
      store.putRetained('b', message('t', 'v', { retain: true }));
      assert.equal(store.writes, before + 2);
      const order: number[] = [];
      store.afterCommit(() => order.push(1));
      store.putRetained('b', message('t', 'w', { retain: true }));
      store.afterCommit(() => order.push(2));
      await committed(store);
      assert.deepEqual(order, [1, 2]);
      assert.equal(store.pending, false);
      assert.equal(store.failed, undefined);
      assert.equal(`${harness.reopen(store).load('b').retained[0]!.payload}`, 'w');
    });
  });
}
