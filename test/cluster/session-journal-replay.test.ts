/**
 * The journal's two ends without NATS: JournaledMessageStore (src/store) records every session
 * write in order and holds `afterCommit` until the journal has them; JournalReplay
 * (src/cluster/session-journal.ts) rebuilds a session from its subject's messages (binary,
 * journal-codec.ts): the last complete snapshot, then the records of its epoch only; every
 * field of a delivery crosses.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeJournal, encodeJournal, snapshotOps } from '../../src/cluster/journal-codec.ts';
import { JournalReplay } from '../../src/cluster/journal-replay.ts';
import {
  JournaledMessageStore,
  type JournalOp,
  MemoryMessageStore,
  type StoredOutbound,
  type StoredSession,
} from '../../src/store/index.ts';
import { message, outbound } from '../store/message-store.contract.ts';

const entry = (seq: number): StoredOutbound => outbound(seq, `m${seq}`);

test('session writes go to the journal in order, retained ones do not, and afterCommit waits for the journal', async () => {
  const recorded: [string, string, JournalOp['t']][] = [];
  const waiting: (() => void)[] = [];
  const store = new JournaledMessageStore(new MemoryMessageStore());
  store.putOutbound('b', 'before', entry(1)); // no journal yet: the wrapped store's alone
  store.attach({
    record: (brokerId, clientId, op) => void recorded.push([brokerId, clientId, op.t]),
    forget: (brokerId, clientId) => void recorded.push([brokerId, clientId, 'forget' as never]),
    whenRecorded: (fn) => void waiting.push(fn),
    get pending() {
      return waiting.length > 0;
    },
  });
  store.putSession('b', { clientId: 'c', expiryInterval: 60, expiresAt: undefined, will: undefined });
  store.putOutbound('b', 'c', entry(2));
  store.setOutboundState('b', 'c', 2, 'sent', 7);
  store.putRetained('b', message('t', 'kept'));
  store.deleteOutbound('b', 'c', 2);
  store.forget('b', 'moved');
  store.deleteSession('b', 'c');
  assert.deepEqual(recorded, [
    ['b', 'c', 'state'],
    ['b', 'c', 'out'],
    ['b', 'c', 'ost'],
    ['b', 'c', 'dout'],
    ['b', 'moved', 'forget'],
    ['b', 'c', 'del'],
  ]);
  let committed = false;
  store.afterCommit(() => {}); // (what the memory store has no pending of, the journal does)
  assert.equal(store.pending, true);
  waiting.shift()!();
  store.afterCommit(() => {
    committed = true;
  });
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(committed, false, 'the journal has not said it holds them');
  waiting.shift()!();
  assert.equal(committed, true);
});

test('a replay starts at the last complete snapshot and applies only its epoch', () => {
  const snap = (outbound: StoredOutbound[]): StoredSession => ({
    clientId: 'c',
    expiryInterval: 60,
    expiresAt: undefined,
    will: undefined,
    subscriptions: [],
    outbound,
    inboundQos2: [],
  });
  const replay = new JournalReplay('c');
  const ops = (e: string, list: JournalOp[]) => encodeJournal(e, false, list);
  const snapshot = (e: string, outbound: StoredOutbound[]) =>
    encodeJournal(e, true, snapshotOps(snap(outbound)));
  replay.apply(ops('old', [{ t: 'out', entry: entry(1) }]), undefined); // before any snapshot
  assert.equal(replay.session(), undefined);
  const first = snapshot('A.1', [entry(5)]);
  replay.apply(first.subarray(0, 10), '0/2');
  replay.apply(first.subarray(10), '1/2');
  replay.apply(
    ops('A.1', [
      { t: 'out', entry: entry(6) },
      { t: 'ost', seq: 5, state: 'sent', packetId: 3 },
    ]),
    undefined,
  );
  replay.apply(ops('B.9', [{ t: 'dout', seq: 6 }]), undefined); // another epoch: ignored
  replay.apply(
    ops('A.1', [
      {
        t: 'sub',
        sub: {
          topicFilter: 'x/#',
          qos: 1,
          noLocal: false,
          retainAsPublished: false,
          retainHandling: 0,
          subscriptionId: undefined,
        },
      },
      { t: 'in', packetId: 4 },
    ]),
    undefined,
  );
  let s = replay.session()!;
  assert.deepEqual(
    s.outbound.map((o) => [o.seq, o.state, o.packetId, o.message.payload.toString()]),
    [
      [5, 'sent', 3, 'm5'],
      [6, 'queued', 0, 'm6'],
    ],
  );
  assert.deepEqual(
    s.subscriptions.map((x) => x.topicFilter),
    ['x/#'],
  );
  assert.deepEqual(s.inboundQos2, [4]);
  // A newer snapshot from another node (the session moved) replaces it all; an incomplete one does not.
  replay.apply(snapshot('B.2', [entry(40)]), '0/1');
  replay.apply(snapshot('A.3', []).subarray(0, 5), '0/2');
  replay.apply(ops('A.1', [{ t: 'dout', seq: 40 }]), undefined);
  s = replay.session()!;
  assert.deepEqual(
    s.outbound.map((o) => o.seq),
    [40],
  );
  replay.apply(ops('B.2', [{ t: 'del' }]), undefined);
  assert.equal(replay.session(), undefined, 'removed');
});

test('every field of a delivery and of a session record crosses the binary journal format', () => {
  const full: StoredOutbound = {
    seq: 2 ** 40 + 3,
    state: 'released',
    packetId: 65535,
    qos: 2,
    retain: true,
    subscriptionIds: [1, 268_435_455],
    message: {
      topic: 'a/ü',
      payload: Buffer.alloc(70_000, 9),
      qos: 2,
      retain: true,
      properties: { correlationData: Buffer.from([1, 2]), userProperties: [['k', 'v']], contentType: 'x' },
      senderId: 'pub-1',
      receivedAt: 1_700_000_000_000,
      expiresAt: 1_700_000_060_000,
    },
  };
  const state = {
    clientId: 'c',
    expiryInterval: 0xffffffff,
    expiresAt: 5,
    will: { message: { ...full.message, payload: Buffer.from('bye') }, publishAt: 9 },
  };
  const ops: JournalOp[] = [
    { t: 'state', state },
    { t: 'out', entry: full },
    { t: 'out', entry: entry(7) },
    { t: 'ost', seq: 7, state: 'sent', packetId: 12 },
    { t: 'unsub', filter: 'x/+' },
    { t: 'din', packetId: 3 },
    { t: 'del' },
  ];
  const back = decodeJournal(encodeJournal('E.1', false, ops));
  assert.equal(back.epoch, 'E.1');
  assert.equal(back.snapshot, false);
  assert.deepEqual(back.ops, ops);
});
