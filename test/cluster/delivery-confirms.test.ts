/**
 * DeliveryConfirms (src/cluster/delivery-confirms.ts) without NATS: two or three nodes wired by
 * an in-memory bus that delivers in publish order, as one NATS connection does. Rounds settle in
 * order, each acknowledgement gets its own round's outcome; a node's answer waits for its
 * journal and for the split deliveries routed before the ask; a node gone, a link down, a
 * not-held answer fail what waits; the store's afterCommit waits for the gate, afterJournal
 * does not (two nodes publishing to each other cannot wait for each other).
 */
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import type { NatsConnection } from '@nats-io/transport-node';
import pino from 'pino';
import type { Broker } from '../../src/broker/index.ts';
import { DeliveryConfirms } from '../../src/cluster/delivery-confirms.ts';
import { ROUTED_PENDING, type Routed } from '../../src/session/index.ts';
import { JournaledMessageStore, MemoryMessageStore } from '../../src/store/index.ts';

type Handler = (err: null, msg: { json(): unknown; subject: string }) => void;

/** A bus: publish queues, `run` delivers everything queued in order (as the network would). */
function bus() {
  const subs = new Map<string, Set<Handler>>();
  const queue: [string, string][] = [];
  const connection = (): NatsConnection =>
    ({
      publish(subject: string, data: string) {
        queue.push([subject, data]);
      },
      subscribe(subject: string, opts: { callback: Handler }) {
        let set = subs.get(subject);
        if (set === undefined) subs.set(subject, (set = new Set()));
        set.add(opts.callback);
        return { unsubscribe: () => set.delete(opts.callback), isClosed: () => false };
      },
    }) as unknown as NatsConnection;
  const run = async (): Promise<void> => {
    for (let turns = 0; turns < 10; turns++) {
      while (queue.length > 0) {
        const [subject, data] = queue.shift()!;
        for (const h of subs.get(subject) ?? []) h(null, { subject, json: () => JSON.parse(data) });
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
  };
  return { connection, run, queue };
}

/** A node whose journal settles when told to (`settle`), or at once. */
function node(name: string, net: ReturnType<typeof bus>, held = false) {
  const journal: ((error?: Error) => void)[] = [];
  let journalError: Error | undefined;
  const confirms = new DeliveryConfirms({
    nodeName: name,
    logger: pino({ level: 'silent' }),
    afterJournal: (fn) => (held ? journal.push(fn) : fn(journalError)),
    afterMoves: (fn) => fn(),
  });
  const nc = net.connection();
  confirms.linkUp(nc);
  return {
    confirms,
    nc,
    settle: (error?: Error) => {
      for (const fn of journal.splice(0)) fn(error);
    },
    failJournal: (error: Error) => {
      journalError = error;
    },
  };
}

/** Nodes a, b (whose journal settles when told) and c on one bus, closed after the test. */
function threeNodes(t: TestContext) {
  const net = bus();
  const [a, b, c] = [node('a', net), node('b', net, true), node('c', net)];
  t.after(() => {
    for (const n of [a, b, c]) n.confirms.close();
  });
  return { net, a, b, c };
}

const outcome = (confirms: DeliveryConfirms) => {
  const got: (string | undefined)[] = [];
  confirms.whenConfirmed((error) => void got.push(error?.message ?? 'ok'));
  return got;
};

test('an acknowledgement waits for every node its message went to, and for their journal', async (t) => {
  const { net, a, b, c } = threeNodes(t);
  assert.equal(a.confirms.pending, false);
  a.confirms.need(['b', 'c'], true);
  assert.equal(a.confirms.pending, true);
  const got = outcome(a.confirms);
  a.confirms.flush(a.nc);
  await net.run();
  assert.deepEqual(got, [], 'b has not journaled yet');
  b.settle();
  await net.run();
  assert.deepEqual(got, ['ok']);
  assert.equal(a.confirms.pending, false);
  assert.equal(a.confirms.stats.asks, 2);
  assert.equal(b.confirms.stats.answered + c.confirms.stats.answered, 2);
});

test('rounds settle in order, each acknowledgement with its own round outcome', async (t) => {
  const { net, a, b } = threeNodes(t); // c answers at once
  a.confirms.need(['b'], true);
  const first = outcome(a.confirms);
  a.confirms.flush(a.nc);
  a.confirms.need(['c'], true);
  const second = outcome(a.confirms);
  a.confirms.flush(a.nc);
  await net.run();
  assert.deepEqual([first, second], [[], []], 'c answered, but the round before it waits for b');
  b.settle(new Error('journal down'));
  await net.run();
  assert.equal(first[0], 'another node did not confirm it holds the message');
  assert.deepEqual(second, ['ok'], "the second round is c's alone: confirmed");
  assert.equal(a.confirms.stats.failed, 1);
});

test('a node gone, or the link down, fails what waits for it; a message that could not be sent fails its round', async (t) => {
  const net = bus();
  const a = node('a', net);
  const b = node('b', net, true);
  t.after(() => {
    for (const n of [a, b]) n.confirms.close();
  });
  a.confirms.need(['b'], true);
  const gone = outcome(a.confirms);
  a.confirms.flush(a.nc);
  await net.run();
  a.confirms.nodeGone('b');
  assert.match(gone[0] ?? '', /left the cluster/);

  a.confirms.need(['b'], true);
  const down = outcome(a.confirms);
  a.confirms.flush(a.nc);
  a.confirms.linkDown();
  assert.match(down[0] ?? '', /link was down/);

  const asked = net.queue.length;
  a.confirms.need(['b'], false); // the outbox could not send it
  const unsent = outcome(a.confirms);
  a.confirms.flush(a.nc);
  assert.match(unsent[0] ?? '', /link was down/);
  assert.equal(net.queue.length, asked, 'nothing asked for a round already failed');
});

test("a node's answer waits for the split deliveries routed before the ask", async (t) => {
  const net = bus();
  const a = node('a', net);
  const b = node('b', net);
  t.after(() => {
    for (const n of [a, b]) n.confirms.close();
  });
  let finish: ((routed: Routed) => void) | undefined;
  const broker = {
    closed: false,
    whenRouted: (done: (routed: Routed) => void) => {
      finish = done;
    },
  } as unknown as Broker;
  b.confirms.routed(broker, ROUTED_PENDING); // a fan-out split over turns, on b
  a.confirms.need(['b'], true);
  const got = outcome(a.confirms);
  a.confirms.flush(a.nc);
  await net.run();
  assert.deepEqual(got, [], 'b still delivers the split fan-out');
  finish!(0);
  await net.run();
  assert.deepEqual(got, ['ok']);
});

test('the store: afterCommit waits for the gate, afterJournal does not', async () => {
  const store = new JournaledMessageStore(new MemoryMessageStore());
  const net = bus();
  const a = node('a', net);
  const b = node('b', net, true);
  store.gate(a.confirms);
  try {
    assert.equal(store.pending, false);
    a.confirms.need(['b'], true);
    assert.equal(store.pending, true, 'an acknowledgement of a message that crossed waits');
    const order: string[] = [];
    store.afterCommit(() => void order.push('commit'));
    store.afterJournal(() => void order.push('journal'));
    assert.deepEqual(order, ['journal'], "the node's own writes are held at once; the gate waits for b");
    a.confirms.flush(a.nc);
    await net.run();
    b.settle();
    await net.run();
    assert.deepEqual(order, ['journal', 'commit']);
  } finally {
    a.confirms.close();
    b.confirms.close();
  }
});
