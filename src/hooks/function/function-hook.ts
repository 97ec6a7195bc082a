/**
 * On-publish hooks as sandboxed functions: a per-broker JavaScript module, run in QuickJS
 * (quickjs-emscripten, WebAssembly) with a memory limit and a CPU-time limit per call.
 *
 * The module (what users deploy):
 *
 *   export function onPublish(messages, ctx) {        // may be async
 *     return messages.filter((m) => m.topic !== 'noise');
 *   }
 *
 * `messages` is the batch in the webhook's shape (../contract/hook-message.ts: mid, broker,
 * topic, clientId, jti, receivedAt, contentType, payloadFormatIndicator, payload) with one
 * difference: a payload whose Payload Format Indicator is 1 is a string, any other payload is
 * a Uint8Array (no `encoding` field). `new TextDecoder().decode(m.payload)` reads bytes as text
 * (most MQTT 3.1.1 clients send text without the indicator) and `new TextEncoder().encode(s)`
 * goes back.
 *
 * The return value follows the webhook's contract (readVerdict): an array of the messages to
 * forward; `mid` and `topic` must be unchanged, `payload` may be a string (UTF-8), a Uint8Array
 * (or any ArrayBuffer view, or an ArrayBuffer), or base64 with `encoding: 'base64'`. A message
 * left out is dropped. Entries leave the sandbox reduced to mid, topic, payload and encoding
 * (all readVerdict reads). Anything that is not an array is handed to readVerdict as it is,
 * which refuses it (the failure policy then applies). An empty batch is answered [] without a
 * call.
 *
 * `ctx`, the whole host API:
 * - `ctx.broker`: the broker name (`<broker>.<namespace>`), as in each message.
 * - `ctx.publish(topic, payload, { qos = 0, retain = false, contentType })`: publishes a derived
 *   message through the router. payload: string (sent as UTF-8 with Payload Format Indicator 1)
 *   or Uint8Array/ArrayBuffer. The topic must be a valid MQTT topic name (non-empty, no `+` or
 *   `#`, no U+0000) and must not start with `$`; otherwise it throws inside the function.
 *   At most 1000 publishes and `memoryLimitBytes` of payload per call, and within the
 *   broker's derived-publish budget (src/hooks/publish-budget.ts: messages and bytes per
 *   second); past the budget it throws a RangeError naming the setting, which the function may catch.
 * - `ctx.state.get(key)` → the stored JSON value or undefined; `ctx.state.set(key, value)` stores
 *   a JSON-serializable value (throws a RangeError beyond the state limit: keys + JSON values in
 *   UTF-8 bytes); `ctx.state.delete(key)` → true if it existed; `ctx.state.keys()` → string[].
 *   The state is the broker's HookState (the server persists it), so it outlives calls, sandbox
 *   rebuilds and redeploys.
 * - `console.log/info/debug` (level info), `console.warn`, `console.error`: to the server log,
 *   at most 100 lines of 8 KiB per call.
 * - Nothing else: no require, import, process, fetch, timers or file system. Standard built-ins
 *   (JSON, Math, Date, Map, typed arrays, Promise, RegExp...) plus TextEncoder/TextDecoder.
 *
 * Rules:
 * - Side effects are buffered: `ctx.publish` and state writes of a call take effect only when
 *   the call succeeds (state first, then the publishes, in order); a failed call changes
 *   nothing and is not charged to the publish budget. Console lines are written at once.
 * - A call (its synchronous part and every promise job until its result settles) gets
 *   `cpuLimitMs` of wall time on the thread that runs it. The sandbox's whole WebAssembly memory (QuickJS
 *   data and stack, module globals, the call's work) is capped at `memoryLimitBytes` (16 MiB at
 *   least: the build's fixed initial memory); a batch larger than half of it is refused unrun.
 *   Past a limit the call fails with FunctionLimitError and the sandbox is rebuilt from the code
 *   in a fresh instance (the module top level runs again: module globals restart, ctx.state
 *   keeps what must survive). So is it after a crash (native recursion, e.g. JSON.stringify of
 *   very deep nesting, exhausting the host stack: a FunctionRuntimeError). Other failures are
 *   FunctionRuntimeErrors and keep the sandbox; JS recursion deeper than QuickJS's stack budget
 *   is a catchable InternalError. An async onPublish awaiting something that can never settle
 *   (there is no timer or I/O) fails at once.
 * - Each FunctionHook has its own QuickJS WebAssembly instance and memory (the compiled code is
 *   shared by the process): a function can exhaust only its own memory (quickjs-instance.ts says
 *   why a shared instance cannot enforce the limit). Calls run synchronously and in the order
 *   `run` was called; only while a sandbox is rebuilt (a few milliseconds) do calls wait.
 */

import type { HookMessage, PublishHook } from '../contract/index.ts';
import {
  CallEffects,
  ConsoleBudget,
  type ConsoleLevel,
  type DerivedPublishBudget,
  type DerivedPublishOptions,
  type HookState,
  stateBytes,
} from './effects.ts';
import { decodeAnswer, encodeBatch } from './envelope.ts';
import { FunctionDeployError, FunctionRuntimeError } from './errors.ts';
import { BASE_MEMORY_BYTES, newQuickJSInstance } from './quickjs-instance.ts';
import { Sandbox, type SandboxMemoryUsage } from './sandbox.ts';
import type { SandboxHost } from './sandbox-host.ts';

/** Smallest accepted memory limit: the QuickJS build's WebAssembly memory starts at 16 MiB. */
export const MIN_FUNCTION_MEMORY_BYTES = BASE_MEMORY_BYTES;
/** Largest accepted memory limit (the instance reserves twice as much address space). */
export const MAX_FUNCTION_MEMORY_BYTES = 1024 * 1024 * 1024;

export interface FunctionHookOptions {
  /** An ES module exporting onPublish(messages, ctx) (sync or async). */
  code: string;
  /**
   * The function's WebAssembly memory, everything its sandbox holds (QuickJS data, stack, heap:
   * module globals and one call's work), rounded up to 64 KiB; also the largest single allocation.
   */
  memoryLimitBytes: number;
  /** Wall-clock budget of one call, pending promise jobs included. */
  cpuLimitMs: number;
  /** Total UTF-8 bytes of state keys and JSON values; a set beyond it throws inside the function. */
  stateLimitBytes: number;
  state: HookState;
  /** The broker's derived-publish budget, shared by every call and version of its function. */
  publishBudget: DerivedPublishBudget;
  publish(topic: string, payload: Buffer, options: DerivedPublishOptions): void;
  /** console.log/info/debug → info, console.warn → warn, console.error → error. */
  log(level: ConsoleLevel, message: string): void;
}

export class FunctionHook implements PublishHook {
  readonly kind = 'function';
  readonly #options: FunctionHookOptions;
  #sandbox: Sandbox | undefined;
  /** Set while a fresh instance is being made; calls made meanwhile wait for it, in order. */
  #starting: Promise<void> | undefined;
  #startError: unknown;
  /** The effects of the call in progress; host functions act on it. */
  #current: CallEffects | undefined;
  #console: ConsoleBudget;
  #stateBytes: number;
  #closed = false;

  /**
   * Compiles and evaluates the module in a new sandbox. Throws FunctionDeployError for a syntax
   * error (message `hook.js:<line>:<column>: SyntaxError: ...`, with `line`/`column`), an
   * import, a top level that throws or exceeds a limit, or a missing onPublish export;
   * RangeError for options out of range.
   */
  static async create(options: FunctionHookOptions): Promise<FunctionHook> {
    checkOptions(options);
    const hook = new FunctionHook(options);
    hook.#sandbox = await hook.#open();
    return hook;
  }

  private constructor(options: FunctionHookOptions) {
    this.#options = options;
    this.#console = new ConsoleBudget(options.log);
    this.#stateBytes = stateBytes(options.state);
  }

  /**
   * Runs onPublish on one batch and resolves to its answer as plain JSON values (for
   * readVerdict). Rejects with FunctionLimitError ('cpu' | 'memory') or FunctionRuntimeError.
   * An empty batch resolves to [] without running the function. The work is synchronous unless
   * the sandbox is being rebuilt after a failure; calls always run in the order they were made.
   */
  run(batch: HookMessage[]): Promise<unknown> {
    if (batch.length === 0 && !this.#closed) return Promise.resolve([]);
    const { envelope, bytes } = encodeBatch(batch);
    return this.runEncoded(envelope, bytes);
  }

  /**
   * `run` for a batch already in the envelope format (envelope.ts `encodeBatch`), which the
   * worker pool (worker-pool.ts) encodes on the event loop's side and sends to the worker that
   * holds this hook. Same answer, errors and order as `run`.
   */
  runEncoded(envelope: string, bytes: Uint8Array | undefined): Promise<unknown> {
    if (!this.#closed && this.#sandbox === undefined && this.#starting === undefined) this.#restart();
    const starting = this.#starting;
    if (starting !== undefined) return starting.then(() => this.#runNow(envelope, bytes));
    try {
      return Promise.resolve(this.#runNow(envelope, bytes));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** The sandbox's memory use, or undefined while it is being rebuilt. */
  memoryUsage(): SandboxMemoryUsage | undefined {
    return this.#sandbox?.memoryUsage();
  }

  close(): void {
    this.#closed = true;
    this.#discardSandbox();
  }

  #runNow(envelope: string, bytes: Uint8Array | undefined): unknown {
    if (this.#closed) throw new Error('the function hook is closed');
    if (this.#current !== undefined) throw new Error('FunctionHook.run is not re-entrant');
    const sandbox = this.#sandbox;
    if (sandbox === undefined) {
      const reason = (this.#startError as Error | undefined)?.message ?? 'no sandbox';
      throw new FunctionRuntimeError(`restarting the function failed: ${reason}`, '');
    }
    const options = this.#options;
    const effects = new CallEffects(
      options.state,
      this.#stateBytes,
      options.stateLimitBytes,
      options.memoryLimitBytes,
      options.publishBudget,
    );
    let answer: unknown;
    this.#current = effects;
    this.#console = new ConsoleBudget(options.log);
    try {
      answer = decodeAnswer(sandbox.call(envelope, bytes));
    } finally {
      this.#current = undefined;
      this.#console.finish();
      // A limit, a crash or a used reserve: drop the instance now and build the next one.
      if (sandbox.broken) this.#restart();
    }
    effects.commitState();
    effects.chargePublishes();
    this.#stateBytes = effects.stateBytes;
    for (const derived of effects.publishes) {
      try {
        options.publish(derived.topic, derived.payload, derived.options);
      } catch (error) {
        options.log('error', `ctx.publish to ${derived.topic} failed: ${(error as Error).message}`);
      }
    }
    return answer;
  }

  /** A sandbox in a fresh instance (its own WebAssembly memory). */
  async #open(): Promise<Sandbox> {
    const instance = await newQuickJSInstance(this.#options.memoryLimitBytes);
    this.#console = new ConsoleBudget(this.#options.log);
    try {
      return Sandbox.open(instance, this.#options.code, this.#options, this.#host);
    } finally {
      this.#console.finish();
    }
  }

  /** Drops the current sandbox and starts building the next; calls wait for it. */
  #restart(): void {
    this.#discardSandbox();
    this.#starting = (async () => {
      try {
        const sandbox = await this.#open();
        if (this.#closed) sandbox.dispose();
        else this.#sandbox = sandbox;
        this.#startError = undefined;
      } catch (error) {
        // The code deployed once, so this is the environment's failure (or a top level that
        // behaves differently this time); calls fail until a later restart succeeds.
        this.#startError = error instanceof FunctionDeployError ? new Error(error.message) : error;
      } finally {
        this.#starting = undefined;
      }
    })();
  }

  #discardSandbox(): void {
    const sandbox = this.#sandbox;
    this.#sandbox = undefined;
    try {
      sandbox?.dispose();
    } catch {
      // The instance is dropped whole; a runtime that cannot be freed cleanly goes with it.
    }
  }

  #effects(): CallEffects {
    const effects = this.#current;
    if (effects === undefined) throw new Error('ctx can only be used while onPublish runs');
    return effects;
  }

  readonly #host: SandboxHost = {
    log: (level, text) => this.#console.write(level, text),
    publish: (topic, payload, qos, retain, contentType) =>
      this.#effects().publish(topic, payload, qos, retain, contentType),
    stateGet: (key) => this.#effects().stateGet(key),
    stateSet: (key, value) => this.#effects().stateSet(key, value),
    stateDelete: (key) => this.#effects().stateDelete(key),
    stateKeys: () => this.#effects().stateKeys(),
  };
}

function checkOptions(options: FunctionHookOptions): void {
  const { memoryLimitBytes, cpuLimitMs, stateLimitBytes } = options;
  if (
    !Number.isSafeInteger(memoryLimitBytes) ||
    memoryLimitBytes < MIN_FUNCTION_MEMORY_BYTES ||
    memoryLimitBytes > MAX_FUNCTION_MEMORY_BYTES
  ) {
    throw new RangeError(
      `memoryLimitBytes must be an integer from ${MIN_FUNCTION_MEMORY_BYTES} to ${MAX_FUNCTION_MEMORY_BYTES}`,
    );
  }
  if (!Number.isFinite(cpuLimitMs) || cpuLimitMs <= 0) throw new RangeError('cpuLimitMs must be positive');
  if (!Number.isSafeInteger(stateLimitBytes) || stateLimitBytes < 0) {
    throw new RangeError('stateLimitBytes must be a non-negative integer');
  }
}
