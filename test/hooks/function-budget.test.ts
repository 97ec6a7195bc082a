/**
 * The derived-publish budget (security review, finding 4), driven through FunctionHook with an
 * injected clock: a function publishing in a loop gets the budget's messages and bytes and no
 * more, refills follow the clock, refusals throw a catchable RangeError naming the setting and
 * are reported, a failed call is not charged, and one budget is shared by every call and
 * version of a broker's function.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FunctionRuntimeError } from '../../src/hooks/function/index.ts';
import { PublishBudget, type PublishBudgetLimits } from '../../src/hooks/publish-budget.ts';
import { deploy, forwarded, type Harness, text } from './function-harness.ts';

/** A call's time limit: 1000 host calls take tens of ms, far more on a loaded machine. */
const SLOW_MACHINE_MS = 10_000;

/** Publishes `n` (the payload) messages of `size` bytes, catching refusals; answers with the counts. */
const LOOP = `
  export function onPublish(messages, ctx) {
    const [n, size] = messages[0].payload.split(' ').map(Number);
    let sent = 0;
    let error = '';
    for (let i = 0; i < n; i++) {
      try {
        ctx.publish('o', 'x'.repeat(size), { qos: 1, retain: true });
        sent++;
      } catch (e) {
        if (error === '') error = e.name + ': ' + e.message;
      }
    }
    messages[0].payload = JSON.stringify({ sent, error });
    return messages;
  }`;

/** LOOP deployed against `budget`. */
const deployLoop = (budget: PublishBudget): Promise<Harness> =>
  deploy(LOOP, { publishBudget: budget, cpuLimitMs: SLOW_MACHINE_MS });

/** One call of LOOP with payload `what` ('<n> <size>'): what the function reported. */
async function runLoop(hook: Harness['hook'], what: string): Promise<{ sent: number; error: string }> {
  const batch = [text(0, 't', what)];
  return JSON.parse(forwarded(batch, await hook.run(batch)).get(0)!) as { sent: number; error: string };
}

interface Clocked {
  budget: PublishBudget;
  refusals: Array<{ message: string; first: boolean }>;
  advance(ms: number): void;
}

function clockedBudget(limits: PublishBudgetLimits): Clocked {
  let now = 1_000;
  const refusals: Clocked['refusals'] = [];
  const budget = new PublishBudget(
    limits,
    (message, first) => refusals.push({ message, first }),
    () => now,
  );
  return {
    budget,
    refusals,
    advance: (ms) => {
      now += ms;
    },
  };
}

describe('derived-publish budget', () => {
  test('a function publishing in a loop gets the burst, then what the clock refills; the rest throws', async (t) => {
    const clock = clockedBudget({ messagesPerSecond: 10, bytesPerSecond: 1_000_000, burstMs: 1000 });
    const { hook, published } = await deployLoop(clock.budget);
    t.after(() => hook.close());
    const call = (what: string) => runLoop(hook, what);

    const first = await call('1000 1');
    assert.equal(first.sent, 10, 'one second of burst at 10 messages/s');
    assert.equal(
      first.error,
      'RangeError: ctx.publish: over the derived-publish budget of 10 messages/s per broker ' +
        '(--function-publish-rate, burst --function-publish-burst-ms 1000); it refills in 100 ms',
    );
    assert.equal(published.length, 10);
    assert.equal(clock.refusals.length, 990);
    assert.deepEqual(
      clock.refusals.map((r) => r.first),
      [true, ...Array(989).fill(false)],
      'one refusal a minute is flagged (logged), the others only counted',
    );

    assert.equal((await call('5 1')).sent, 0, 'nothing refilled while the clock stood still');
    clock.advance(300);
    assert.equal((await call('5 1')).sent, 3, '300 ms at 10/s');
    clock.advance(60_000);
    assert.equal((await call('1000 1')).sent, 10, 'an idle minute refills one burst, no more');
    assert.equal(published.length, 23);
    assert.equal(clock.refusals.filter((r) => r.first).length, 2, 'flagged again a minute later');
    assert.ok(published.every((p) => p.options.retain && p.options.qos === 1));
  });

  test('bytes are budgeted too (topic and payload); a message larger than the burst is refused as such', async (t) => {
    const clock = clockedBudget({ messagesPerSecond: 1000, bytesPerSecond: 100, burstMs: 1000 });
    const { hook, published } = await deployLoop(clock.budget);
    t.after(() => hook.close());
    const call = (what: string) => runLoop(hook, what);
    // Topic 'o' (1 byte) + 29 bytes of payload: 30 bytes each, 3 fit in 100.
    const sized = await call('10 29');
    assert.equal(sized.sent, 3);
    assert.match(
      sized.error,
      /^RangeError: ctx\.publish: over the derived-publish budget of 100 bytes\/s per broker \(--function-publish-bytes-rate, burst --function-publish-burst-ms 1000\); it refills in \d+ ms$/,
    );
    clock.advance(60_000);
    const huge = await call('1 100');
    assert.equal(huge.sent, 0);
    assert.equal(
      huge.error,
      'RangeError: ctx.publish: a message of 101 bytes (topic and payload) is larger than the derived-publish ' +
        'burst of 100 bytes (--function-publish-bytes-rate 100 for --function-publish-burst-ms 1000)',
    );
    assert.equal(published.length, 3);
    assert.equal(
      published.reduce((sum, p) => sum + 1 + p.payload.length, 0),
      90,
    );
  });

  test('a rate of 0 disables ctx.publish, with the setting named', async (t) => {
    const clock = clockedBudget({ messagesPerSecond: 0, bytesPerSecond: 1000, burstMs: 1000 });
    const { hook, published } = await deployLoop(clock.budget);
    t.after(() => hook.close());
    assert.deepEqual(await runLoop(hook, '3 1'), {
      sent: 0,
      error:
        'RangeError: ctx.publish: derived publishes are disabled on this server (--function-publish-rate 0)',
    });
    assert.equal(published.length, 0);
    assert.equal(clock.refusals.length, 3);
  });

  test('a call that fails is not charged; an uncaught refusal fails the call with its message', async (t) => {
    const clock = clockedBudget({ messagesPerSecond: 5, bytesPerSecond: 1_000_000, burstMs: 1000 });
    const { hook, published } = await deploy(
      `
      export function onPublish(messages, ctx) {
        const { n, fail } = JSON.parse(messages[0].payload);
        for (let i = 0; i < n; i++) ctx.publish('o', String(i));
        if (fail) throw new Error('after publishing');
        return messages;
      }`,
      { publishBudget: clock.budget, cpuLimitMs: SLOW_MACHINE_MS },
    );
    t.after(() => hook.close());
    const run = (n: number, fail: boolean) => hook.run([text(0, 't', JSON.stringify({ n, fail }))]);

    await assert.rejects(run(4, true), /after publishing/);
    assert.deepEqual(clock.budget.available(), { messages: 5, bytes: 1_000_000 }, 'nothing charged');
    await assert.rejects(run(6, false), (err: Error) => {
      assert.ok(err instanceof FunctionRuntimeError);
      assert.match(err.message, /RangeError: ctx\.publish: over the derived-publish budget of 5 messages\/s/);
      return true;
    });
    assert.equal(published.length, 0, 'the failed call published nothing, not even its admitted five');
    assert.equal(clock.budget.available().messages, 5, 'and was not charged');
    await run(5, false);
    assert.equal(published.length, 5);
    assert.equal(clock.budget.available().messages, 0);
  });

  test('one budget is shared by every call and by the next version of the function', async (t) => {
    const clock = clockedBudget({ messagesPerSecond: 8, bytesPerSecond: 1_000_000, burstMs: 1000 });
    const v1 = await deployLoop(clock.budget);
    const v2 = await deployLoop(clock.budget);
    t.after(() => {
      v1.hook.close();
      v2.hook.close();
    });
    const sent = async (h: Harness) => (await runLoop(h.hook, '5 1')).sent;
    assert.deepEqual([await sent(v1), await sent(v2), await sent(v1)], [5, 3, 0]);
    assert.equal(v1.published.length + v2.published.length, 8);
  });

  test('limits out of range are refused', () => {
    const ok = { messagesPerSecond: 1, bytesPerSecond: 1, burstMs: 1 };
    assert.throws(() => new PublishBudget({ ...ok, burstMs: 0 }, () => undefined), RangeError);
    assert.throws(() => new PublishBudget({ ...ok, messagesPerSecond: -1 }, () => undefined), RangeError);
    assert.throws(() => new PublishBudget({ ...ok, bytesPerSecond: 1.5 }, () => undefined), RangeError);
  });
});
