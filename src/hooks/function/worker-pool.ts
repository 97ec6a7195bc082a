/**
 * The pool of worker threads sandboxed functions run in (`--hook-workers`), so the event loop
 * only encodes batches and applies answers: a slow or looping function delays its own broker's
 * hooked messages, not the server's other clients.
 *
 * Design:
 * - Lazy: no thread and no QuickJS until the first function is deployed. This module imports
 *   nothing that loads quickjs-emscripten; only the worker threads (sandbox-worker.ts) do.
 * - Pinned: a broker (`owner`) is pinned to one worker while it has a function there; every
 *   version of its function runs on that worker, which keeps its state and derived-publish
 *   budget (sandbox-worker.ts says how they stay correct). A new broker goes to a new worker
 *   while fewer than `size` run, else to the one with the fewest brokers. A worker runs one call
 *   at a time, so brokers sharing a worker share its time; with as many workers as brokers
 *   with functions, each broker has a thread of its own.
 * - Order: calls of a hook are posted in the pipeline's order and run in that order in the
 *   worker; the pipeline applies decisions in submission order, as with any hook.
 * - A call's effects (state writes, then derived publishes, and its budget charge) are applied
 *   here when its answer arrives, before the answer is given to the pipeline; a failed call has
 *   none, as in FunctionHook.
 * - A worker that dies (a crash, an out-of-memory of its heap) fails its calls in flight with
 *   FunctionRuntimeError (the pipeline's failure policy decides their messages), and is
 *   replaced: its hooks are deployed again on the new thread from the code, with the broker's
 *   state and budget as the answered calls left them. A worker dying again soon after its start
 *   is replaced after a growing delay (up to MAX_RESTART_DELAY_MS), calls waiting meanwhile.
 * - Batches cross as envelope.ts's envelope: the JSON text cloned, the binary payloads in one
 *   transferred ArrayBuffer (bench/hook-transfer.ts measures both; docs/performance.md).
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { HookMessage, PublishHook } from '../contract/index.ts';
import type { PublishBudget } from '../publish-budget.ts';
import { encodeBatch } from './envelope.ts';
import { FunctionRuntimeError } from './errors.ts';
import type { FunctionHookOptions } from './function-hook.ts';
import { type CallEffectsOut, deserializeError, type FromWorker, type ToWorker } from './worker-protocol.ts';

/** A worker living this long is healthy again: its next death is replaced at once. */
const HEALTHY_AFTER_MS = 10_000;
const MAX_RESTART_DELAY_MS = 5_000;
const WORKER_URL = new URL('./sandbox-worker.ts', import.meta.url);

/** What deploying a function on the pool needs beyond FunctionHook's options. */
export interface PooledFunctionOptions extends FunctionHookOptions {
  /** The broker the function belongs to (its record id): its versions share a worker. */
  owner: string;
  /** The broker's budget: a copy of it runs in the worker; this one is kept current. */
  publishBudget: PublishBudget;
}

/** Default size of the pool: one worker per core the process may use. */
export function defaultHookWorkers(): number {
  return availableParallelism();
}

export class FunctionWorkerPool {
  readonly size: number;
  readonly #log: Logger;
  readonly #workers: SandboxWorker[] = [];
  /** owner → its worker and how many of its hooks are live there. */
  readonly #pinned = new Map<string, { worker: SandboxWorker; hooks: number }>();
  #nextId = 1;
  #closed = false;

  /** `size` 0 means `defaultHookWorkers()`. */
  constructor(size: number, log: Logger) {
    this.size = size > 0 ? size : defaultHookWorkers();
    this.#log = log;
  }

  /** Worker threads started so far (0 until the first deployment). */
  get started(): number {
    return this.#workers.length;
  }

  /** The threads, for tests and diagnostics (threadId); a replaced worker's entry changes. */
  threads(): readonly Worker[] {
    return this.#workers.map((w) => w.thread);
  }

  /**
   * Compiles the module in the broker's worker; resolves to a hook that runs there, or rejects
   * with FunctionDeployError as FunctionHook.create does.
   */
  async deploy(options: PooledFunctionOptions): Promise<PublishHook> {
    if (this.#closed) throw new Error('the function worker pool is closed');
    const worker = this.#pin(options.owner);
    const hook = new PooledFunctionHook(this.#nextId++, options, worker, () => this.#unpin(options.owner));
    try {
      await worker.deploy(hook);
    } catch (error) {
      this.#unpin(options.owner);
      throw error;
    }
    return hook;
  }

  /** Stops every worker; calls in flight fail. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(this.#workers.map((w) => w.stop()));
  }

  #pin(owner: string): SandboxWorker {
    const pinned = this.#pinned.get(owner);
    if (pinned !== undefined) {
      pinned.hooks++;
      return pinned.worker;
    }
    let worker: SandboxWorker;
    if (this.#workers.length < this.size) {
      worker = new SandboxWorker(this.#log);
      this.#workers.push(worker);
    } else {
      worker = this.#workers.reduce((a, b) => (b.owners < a.owners ? b : a));
    }
    worker.owners++;
    this.#pinned.set(owner, { worker, hooks: 1 });
    return worker;
  }

  #unpin(owner: string): void {
    const pinned = this.#pinned.get(owner);
    if (pinned === undefined || --pinned.hooks > 0) return;
    pinned.worker.owners--;
    this.#pinned.delete(owner);
  }
}

interface PendingCall {
  resolve(value: unknown): void;
  reject(error: Error): void;
}

/** One worker thread and the hooks and calls it holds; replaced whole when it dies. */
class SandboxWorker {
  /** Brokers pinned here (the pool's count, for placement). */
  owners = 0;
  thread!: Worker;
  readonly #log: Logger;
  readonly #hooks = new Map<number, PooledFunctionHook>();
  readonly #deploying = new Map<number, PendingCall>();
  readonly #calls = new Map<number, PendingCall>();
  #nextCall = 1;
  #startedAt = 0;
  #restartDelayMs = 0;
  #restartTimer: NodeJS.Timeout | undefined;
  /** Messages posted while a replacement waits for its delay. */
  #held: { message: ToWorker; transfer: ArrayBuffer[] }[] | undefined;
  #stopping = false;
  #exitReason: string | undefined;

  constructor(log: Logger) {
    this.#log = log;
    this.#start();
  }

  deploy(hook: PooledFunctionHook): Promise<void> {
    this.#hooks.set(hook.id, hook);
    return new Promise<void>((resolve, reject) => {
      this.#deploying.set(hook.id, { resolve: () => resolve(), reject });
      this.#post(hook.deployMessage());
    });
  }

  run(id: number, envelope: string, bytes: Uint8Array | undefined): Promise<unknown> {
    const call = this.#nextCall++;
    return new Promise<unknown>((resolve, reject) => {
      this.#calls.set(call, { resolve, reject });
      this.#post(
        { t: 'run', id, call, envelope, bytes },
        bytes === undefined ? [] : [bytes.buffer as ArrayBuffer],
      );
    });
  }

  close(id: number): void {
    this.#hooks.delete(id);
    this.#post({ t: 'close', id });
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#restartTimer);
    this.#failAll('the server is stopping');
    await this.thread.terminate();
  }

  #start(): void {
    this.#startedAt = performance.now();
    this.#exitReason = undefined;
    const thread = new Worker(WORKER_URL);
    // The server keeps the process alive; an idle pool must not.
    thread.unref();
    thread.on('message', (message: FromWorker) => this.#receive(message));
    thread.on('error', (error) => {
      this.#exitReason = error.message;
    });
    thread.on('exit', (code) => {
      if (thread === this.thread && !this.#stopping) this.#died(this.#exitReason ?? `exit code ${code}`);
    });
    this.thread = thread;
  }

  #post(message: ToWorker, transfer: ArrayBuffer[] = []): void {
    if (this.#held !== undefined) this.#held.push({ message, transfer });
    else this.thread.postMessage(message, transfer);
  }

  #receive(message: FromWorker): void {
    switch (message.t) {
      case 'result': {
        const call = this.#take(this.#calls, message.call);
        const hook = this.#hooks.get(message.id);
        try {
          hook?.apply(message.effects);
        } catch (error) {
          this.#log.error({ err: error }, 'applying a function call’s effects failed');
        }
        call?.resolve(message.answer);
        return;
      }
      case 'failed':
        this.#take(this.#calls, message.call)?.reject(deserializeError(message.error));
        return;
      case 'deployed':
        this.#take(this.#deploying, message.id)?.resolve(undefined);
        return;
      case 'deployFailed': {
        this.#hooks.delete(message.id);
        const deploying = this.#take(this.#deploying, message.id);
        if (deploying !== undefined) deploying.reject(deserializeError(message.error));
        // Deployed again on a replacement thread: its calls now fail, by the failure policy.
        else
          this.#log.error(
            { err: message.error.message },
            'a function could not be deployed again on a new worker thread; its calls fail until it is redeployed',
          );
        return;
      }
      case 'log':
        this.#hooks.get(message.id)?.log(message.level, message.message);
        return;
      case 'refused':
        this.#hooks.get(message.id)?.refused(message.message, message.first);
        return;
    }
  }

  #take(map: Map<number, PendingCall>, key: number): PendingCall | undefined {
    const pending = map.get(key);
    map.delete(key);
    return pending;
  }

  #died(reason: string): void {
    const lived = performance.now() - this.#startedAt;
    this.#restartDelayMs =
      lived >= HEALTHY_AFTER_MS ? 0 : Math.min(MAX_RESTART_DELAY_MS, Math.max(100, this.#restartDelayMs * 2));
    this.#log.error(
      { reason, hooks: this.#hooks.size, calls: this.#calls.size, restartInMs: this.#restartDelayMs },
      'a function worker thread stopped; its calls in flight follow the failure policy, and its functions are deployed again on a new thread',
    );
    this.#failAll(`the function's worker thread stopped (${reason})`);
    const redeploy = (): void => {
      this.#restartTimer = undefined;
      const held = this.#held ?? [];
      this.#held = undefined;
      this.#start();
      for (const hook of this.#hooks.values()) this.thread.postMessage(hook.deployMessage());
      for (const { message, transfer } of held) this.thread.postMessage(message, transfer);
    };
    if (this.#restartDelayMs === 0) redeploy();
    else {
      this.#held = [];
      this.#restartTimer = setTimeout(redeploy, this.#restartDelayMs);
      this.#restartTimer.unref();
    }
  }

  /** Fails every call and deployment in flight (the thread that had them is gone). */
  #failAll(reason: string): void {
    const error = new FunctionRuntimeError(reason, '');
    for (const pending of [...this.#calls.values(), ...this.#deploying.values()]) pending.reject(error);
    this.#calls.clear();
    for (const id of this.#deploying.keys()) this.#hooks.delete(id);
    this.#deploying.clear();
  }
}

/** A function deployed on a worker: the PublishHook the broker's pipeline calls. */
class PooledFunctionHook implements PublishHook {
  readonly kind = 'function';
  readonly id: number;
  readonly #options: PooledFunctionOptions;
  readonly #worker: SandboxWorker;
  readonly #onClose: () => void;
  #closed = false;

  constructor(id: number, options: PooledFunctionOptions, worker: SandboxWorker, onClose: () => void) {
    this.id = id;
    this.#options = options;
    this.#worker = worker;
    this.#onClose = onClose;
  }

  run(batch: HookMessage[]): Promise<unknown> {
    if (this.#closed) return Promise.reject(new Error('the function hook is closed'));
    if (batch.length === 0) return Promise.resolve([]);
    const { envelope, bytes } = encodeBatch(batch);
    return this.#worker.run(this.id, envelope, bytes);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#worker.close(this.id);
    this.#onClose();
  }

  /** The deployment, with the broker's state and budget as they stand now. */
  deployMessage(): ToWorker {
    const { code, memoryLimitBytes, cpuLimitMs, stateLimitBytes, state, publishBudget, owner } =
      this.#options;
    const entries: [string, string][] = [];
    for (const key of state.keys()) {
      const value = state.get(key);
      if (value !== undefined) entries.push([key, value]);
    }
    return {
      t: 'deploy',
      id: this.id,
      owner,
      code,
      memoryLimitBytes,
      cpuLimitMs,
      stateLimitBytes,
      state: entries,
      budget: { limits: { ...publishBudget.limits }, level: publishBudget.available() },
    };
  }

  /** A successful call's effects: state first, then the budget, then the derived publishes. */
  apply(effects: CallEffectsOut): void {
    const { state, publishBudget, publish, log } = this.#options;
    for (const [key, value] of effects.writes) {
      if (value === null) state.delete(key);
      else state.set(key, value);
    }
    publishBudget.charge(effects.charged[0], effects.charged[1]);
    for (const derived of effects.publishes) {
      const { payload } = derived;
      try {
        publish(
          derived.topic,
          Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength),
          derived.options,
        );
      } catch (error) {
        log('error', `ctx.publish to ${derived.topic} failed: ${(error as Error).message}`);
      }
    }
  }

  log(level: 'info' | 'warn' | 'error', message: string): void {
    this.#options.log(level, message);
  }

  refused(message: string, first: boolean): void {
    this.#options.publishBudget.refused(message, first);
  }
}
