/**
 * The on-publish pipeline and ordered acknowledgements, driven directly with a scripted hook:
 * decisions leave in submission order even when concurrent calls finish in reverse; batches
 * are sealed by size and by window; the failure policy applies per batch; publishers are
 * paused at maxPending and resumed at half; a hook replaced mid-stream takes the next batch;
 * OrderedAcks keeps answers in order around reserved places.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { HookMessage, PublishHook } from '../../src/hooks/index.ts';
import { OnPublishPipeline } from '../../src/hooks/index.ts';
import { silentLogger } from '../../src/observability/index.ts';
import { Message } from '../../src/router/index.ts';
import { OrderedAcks } from '../../src/session/ordered-acks.ts';

/** A hook whose calls the test settles by hand. */
class ScriptedHook implements PublishHook {
  readonly kind = 'webhook';
  readonly calls: { batch: HookMessage[]; settle: (answer: unknown) => void; fail: (err: Error) => void }[] =
    [];
  closed = false;
  run(batch: HookMessage[]): Promise<unknown> {
    return new Promise((resolve, reject) => this.calls.push({ batch, settle: resolve, fail: reject }));
  }
  close(): void {
    this.closed = true;
  }
}

const options = (overrides: Partial<ConstructorParameters<typeof OnPublishPipeline>[1]> = {}) => ({
  brokerName: 'b.ns.localhost',
  policy: 'fail-closed' as const,
  batchSize: 3,
  batchWindowMs: 1000,
  concurrency: 4,
  maxPending: 100,
  log: silentLogger(),
  ...overrides,
});

const message = (payload: string) =>
  new Message({
    topic: 't',
    payload: Buffer.from(payload),
    qos: 1,
    retain: false,
    senderId: 'c',
    properties: { payloadFormatIndicator: 1 },
  });

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('OnPublishPipeline', () => {
  it('releases decisions in submission order when calls finish in reverse', async () => {
    const hook = new ScriptedHook();
    const pipeline = new OnPublishPipeline(hook, options());
    const decided: string[] = [];
    for (let i = 0; i < 9; i++)
      pipeline.submit(
        {
          message: message(`m${i}`),
          jti: undefined,
          decided: (m) => decided.push(m ? m.payload.toString() : `x${i}`),
        },
        undefined,
      );
    assert.equal(hook.calls.length, 3, 'three full batches of 3, sealed by size');
    hook.calls[2]!.settle(hook.calls[2]!.batch);
    hook.calls[1]!.settle(hook.calls[1]!.batch.filter((m) => m.mid !== 1));
    await tick();
    assert.deepEqual(decided, [], 'later batches wait for the first');
    hook.calls[0]!.settle(hook.calls[0]!.batch.map((m) => ({ ...m, payload: m.payload.toUpperCase() })));
    await tick();
    assert.deepEqual(decided, ['M0', 'M1', 'M2', 'm3', 'x4', 'm5', 'm6', 'm7', 'm8']);
    const view = pipeline.view();
    assert.equal(view.forwarded, 8);
    assert.equal(view.dropped, 1);
    assert.equal(view.pending, 0);
  });

  it('seals a partial batch at the window, and applies the failure policy to a failed call', async () => {
    const hook = new ScriptedHook();
    const pipeline = new OnPublishPipeline(hook, options({ batchWindowMs: 5, policy: 'fail-open' }));
    const decided: (string | undefined)[] = [];
    const failures: (string | undefined)[] = [];
    pipeline.submit(
      {
        message: message('a'),
        jti: 'j1',
        decided: (m, failed) => {
          decided.push(m?.payload.toString());
          failures.push(failed);
        },
      },
      undefined,
    );
    assert.equal(hook.calls.length, 0);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(hook.calls.length, 1);
    assert.equal(hook.calls[0]!.batch[0]!.jti, 'j1');
    hook.calls[0]!.fail(new Error('boom'));
    await tick();
    assert.deepEqual(decided, ['a'], 'fail-open forwards unchanged');
    assert.deepEqual(failures, ['boom']);
    assert.equal(pipeline.view().failedForwarded, 1);
    assert.equal(pipeline.view().lastErrors[0]!.message, 'boom');
  });

  it('a decision that throws does not strand the rest of the batch', async () => {
    const hook = new ScriptedHook();
    const pipeline = new OnPublishPipeline(hook, options());
    const decided: string[] = [];
    pipeline.submit(
      {
        message: message('a'),
        jti: undefined,
        decided: () => {
          throw new Error('downstream bug');
        },
      },
      undefined,
    );
    pipeline.submit(
      { message: message('b'), jti: undefined, decided: (m) => decided.push(String(m?.payload)) },
      undefined,
    );
    pipeline.submit(
      { message: message('c'), jti: undefined, decided: (m) => decided.push(String(m?.payload)) },
      undefined,
    );
    hook.calls[0]!.settle(hook.calls[0]!.batch);
    await tick();
    assert.deepEqual(decided, ['b', 'c']);
    assert.equal(pipeline.pending, 0);
  });

  it('a changed payload that is not UTF-8 under Payload Format Indicator 1 is dropped as invalid', async () => {
    const hook = new ScriptedHook();
    const pipeline = new OnPublishPipeline(hook, options({ batchSize: 1 }));
    let decision: unknown = 'none';
    pipeline.submit({ message: message('text'), jti: undefined, decided: (m) => (decision = m) }, undefined);
    hook.calls[0]!.settle([
      {
        ...hook.calls[0]!.batch[0]!,
        payload: Buffer.from([0xff, 0xfe]).toString('base64'),
        encoding: 'base64',
      },
    ]);
    await tick();
    assert.equal(decision, undefined);
    assert.equal(pipeline.view().invalid, 1);
  });

  it('a non-array answer fails the batch; fail-closed drops it', async () => {
    const hook = new ScriptedHook();
    const pipeline = new OnPublishPipeline(hook, options({ batchSize: 1 }));
    let decision: unknown = 'none';
    pipeline.submit({ message: message('a'), jti: undefined, decided: (m) => (decision = m) }, undefined);
    hook.calls[0]!.settle({ not: 'an array' });
    await tick();
    assert.equal(decision, undefined);
    assert.equal(pipeline.view().failedDropped, 1);
  });

  it('pauses a publisher at maxPending and resumes it at half', async () => {
    const hook = new ScriptedHook();
    const pipeline = new OnPublishPipeline(hook, options({ batchSize: 2, maxPending: 4, concurrency: 1 }));
    const events: string[] = [];
    const publisher = { pause: () => events.push('pause'), resume: () => events.push('resume') };
    for (let i = 0; i < 4; i++)
      pipeline.submit({ message: message(`${i}`), jti: undefined, decided: () => {} }, publisher);
    assert.deepEqual(events, ['pause']);
    assert.equal(hook.calls.length, 1, 'concurrency 1: the second batch waits');
    hook.calls[0]!.settle(hook.calls[0]!.batch);
    await tick();
    assert.deepEqual(events, ['pause', 'resume'], 'resumed once 2 of 4 are decided');
    assert.equal(hook.calls.length, 2, 'the waiting batch started');
  });

  it('a hook replaced mid-stream takes the next batch; the old one is closed when idle', async () => {
    const first = new ScriptedHook();
    const second = new ScriptedHook();
    const pipeline = new OnPublishPipeline(first, options({ batchSize: 1 }));
    const decided: string[] = [];
    const submit = (p: string) =>
      pipeline.submit(
        { message: message(p), jti: undefined, decided: (m) => decided.push(String(m?.payload)) },
        undefined,
      );
    submit('a');
    pipeline.reconfigure(second, options({ batchSize: 1 }));
    submit('b');
    assert.equal(first.calls.length, 1);
    assert.equal(second.calls.length, 1);
    second.calls[0]!.settle(second.calls[0]!.batch);
    first.calls[0]!.settle(first.calls[0]!.batch);
    await tick();
    assert.deepEqual(decided, ['a', 'b']);
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(first.closed, true);
    pipeline.reconfigure(undefined, options());
    assert.equal(pipeline.active, false, 'no hook and nothing pending: publishes bypass it');
  });
});

describe('OrderedAcks', () => {
  it('sends at once when nothing is reserved, else in order behind reserved places', () => {
    const acks = new OrderedAcks();
    const sent: string[] = [];
    acks.send(() => sent.push('1'));
    const second = acks.reserve();
    acks.send(() => sent.push('3'));
    const fourth = acks.reserve();
    acks.send(() => sent.push('5'));
    assert.deepEqual(sent, ['1']);
    fourth(() => sent.push('4'));
    assert.deepEqual(sent, ['1'], 'the fourth waits for the second');
    second(() => sent.push('2'));
    assert.deepEqual(sent, ['1', '2', '3', '4', '5']);
    assert.equal(acks.waiting, 0);
  });
});
