/**
 * A sandbox worker thread: the entry point the worker pool (worker-pool.ts) starts with
 * `new Worker`. It holds the FunctionHooks (QuickJS sandboxes) of the brokers pinned to it and
 * runs their calls, so the event loop only encodes batches and applies answers.
 *
 * Invariants:
 * - The calls of one hook run one after the other in the order they arrived (a queue per hook),
 *   so the effects gathered between a call's start and its end are that call's alone.
 * - The owner's (broker's) key-value state and derived-publish budget live here while the
 *   worker holds a version of the owner's function: this copy is the one calls read and write,
 *   synchronously, as in FunctionHook. The state starts from the event loop's copy (the
 *   broker's HookState, persisted) and every successful call's writes go back to it with the
 *   answer; the budget starts from what the broker's budget holds and every charge goes back.
 *   So a replacement worker starts from every write and charge of the calls that were answered.
 * - Every message is answered (deployed/deployFailed, result/failed); nothing thrown here ends
 *   the thread.
 */
import { parentPort } from 'node:worker_threads';
import { PublishBudget } from '../publish-budget.ts';
import type { HookState } from './effects.ts';
import { FunctionHook } from './function-hook.ts';
import { type CallEffectsOut, type FromWorker, serializeError, type ToWorker } from './worker-protocol.ts';

interface Owner {
  state: Map<string, string>;
  budget: PublishBudget;
  hooks: number;
}

interface HostedHook {
  owner: string;
  ready: Promise<FunctionHook>;
  /** The last call queued: the next one starts after it. */
  queue: Promise<void>;
  /** The effects of the call in progress. */
  slot: { effects: CallEffectsOut | undefined };
}

const port = parentPort;
if (port === null) throw new Error('sandbox-worker.ts runs as a worker thread (worker-pool.ts starts it)');
const owners = new Map<string, Owner>();
const hooks = new Map<number, HostedHook>();
/**
 * The hook whose `ctx.publish` is being admitted: an owner's budget is shared by its versions,
 * and a refusal is reported for the one calling (admission is synchronous, inside its call).
 */
let admitting: number | undefined;

const send = (message: FromWorker, transfer?: ArrayBuffer[]): void => port.postMessage(message, transfer);

port.on('message', (message: ToWorker) => {
  if (message.t === 'deploy') deploy(message);
  else if (message.t === 'run') run(message);
  else close(message.id);
});

function deploy(message: Extract<ToWorker, { t: 'deploy' }>): void {
  const { id, owner: key } = message;
  let owner = owners.get(key);
  if (owner === undefined) {
    const budget = new PublishBudget(message.budget.limits, (text, first) =>
      send({ t: 'refused', id: admitting ?? id, message: text, first }),
    );
    budget.seed(message.budget.level);
    owner = { state: new Map(message.state), budget, hooks: 0 };
    owners.set(key, owner);
  }
  owner.hooks++;
  const slot: HostedHook['slot'] = { effects: undefined };
  const current = (): CallEffectsOut => {
    if (slot.effects === undefined) throw new Error('ctx can only be used while onPublish runs');
    return slot.effects;
  };
  const { state, budget } = owner;
  const hookState: HookState = {
    get: (k) => state.get(k),
    set: (k, value) => {
      state.set(k, value);
      current().writes.push([k, value]);
    },
    delete: (k) => {
      if (state.delete(k)) current().writes.push([k, null]);
    },
    keys: () => state.keys(),
  };
  const ready = FunctionHook.create({
    code: message.code,
    memoryLimitBytes: message.memoryLimitBytes,
    cpuLimitMs: message.cpuLimitMs,
    stateLimitBytes: message.stateLimitBytes,
    state: hookState,
    publishBudget: {
      admit: (messages, admittedBytes, bytes) => {
        admitting = id;
        try {
          budget.admit(messages, admittedBytes, bytes);
        } finally {
          admitting = undefined;
        }
      },
      charge: (messages, bytes) => {
        budget.charge(messages, bytes);
        current().charged = [messages, bytes];
      },
    },
    publish: (topic, payload, options) => current().publishes.push({ topic, payload, options }),
    log: (level, text) => send({ t: 'log', id, level, message: text }),
  });
  hooks.set(id, { owner: key, ready, queue: Promise.resolve(), slot });
  ready.then(
    () => send({ t: 'deployed', id }),
    (error: unknown) => {
      release(id);
      send({ t: 'deployFailed', id, error: serializeError(error) });
    },
  );
}

function run(message: Extract<ToWorker, { t: 'run' }>): void {
  const { id, call } = message;
  const hosted = hooks.get(id);
  if (hosted === undefined) {
    send({ t: 'failed', id, call, error: { name: 'Error', message: 'the function is not deployed' } });
    return;
  }
  hosted.queue = hosted.queue.then(async () => {
    try {
      const hook = await hosted.ready;
      const effects: CallEffectsOut = { writes: [], publishes: [], charged: [0, 0] };
      hosted.slot.effects = effects;
      const answer = await hook.runEncoded(message.envelope, message.bytes);
      // Derived payloads are copied, not transferred: they may be slices of Buffer's shared pool.
      send({ t: 'result', id, call, answer, effects });
    } catch (error) {
      send({ t: 'failed', id, call, error: serializeError(error) });
    } finally {
      hosted.slot.effects = undefined;
    }
  });
}

function close(id: number): void {
  const hosted = hooks.get(id);
  if (hosted === undefined) return;
  // After the calls already queued: they were sent before the close, so they are answered.
  hosted.queue = hosted.queue.then(async () => {
    try {
      (await hosted.ready).close();
    } catch {
      // A deployment that failed has nothing to close.
    }
    release(id);
  });
}

/** Forgets a hook; its owner's state and budget go with the owner's last hook. */
function release(id: number): void {
  const hosted = hooks.get(id);
  if (hosted === undefined) return;
  hooks.delete(id);
  const owner = owners.get(hosted.owner);
  if (owner !== undefined && --owner.hooks === 0) owners.delete(hosted.owner);
}
