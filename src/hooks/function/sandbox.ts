/**
 * One QuickJS runtime + context running one deployed module, in its own WebAssembly instance
 * (quickjs-instance.ts): loading the module, calling its wrapped `onPublish`, enforcing the
 * limits and turning guest failures into typed errors.
 *
 * Invariants:
 * - Every QuickJS handle this file creates is disposed before the method that made it returns,
 *   except `#call` and `#describe` (prelude functions), disposed with the sandbox. Thousands of
 *   calls leave the heap where it was.
 * - CPU: the interrupt handler stops guest code once `performance.now()` passes `#deadline`.
 *   The deadline covers one whole call (the synchronous part plus every pending job until the
 *   returned promise settles) and is infinite between calls. QuickJS's interrupt is uncatchable,
 *   so guest try/catch/finally cannot extend it.
 * - Memory: guest code runs inside the gate's guest mode (the instance's memory cannot grow past
 *   the limit); host-side work (inputs, answers, host functions) runs in host mode. QuickJS's own
 *   limit (set to the same figure) refuses any single allocation above it, and is lifted only
 *   around host-side work or, by a little, for the deadline-bound description of a thrown value.
 * - Stack: QuickJS's stack limit (STACK_LIMIT_BYTES) stops runaway recursion with a catchable
 *   InternalError well before the host's own stack could overflow inside WebAssembly.
 * - `broken` after a limit error, a refused memory growth, a use of the host reserve, or a crash
 *   (any unexpected exception out of QuickJS, e.g. a WebAssembly trap): the owner must drop the
 *   whole instance. No pending job outlives a call: they are drained before the call returns or
 *   fails, so one call's promises never run inside the next.
 * - Strings cross the boundary as JSON texts (quickjs-emscripten passes C strings, which would
 *   cut at U+0000); bytes cross as ArrayBuffers. The prelude keeps the host functions
 *   (sandbox-host.ts) in a closure (see prelude.ts).
 */
import type { DisposableResult, QuickJSContext, QuickJSHandle, QuickJSRuntime } from 'quickjs-emscripten';
import { FunctionDeployError, FunctionLimitError, FunctionRuntimeError } from './errors.ts';
import { PRELUDE_SOURCE } from './prelude.ts';
import type { MemoryGate, QuickJSInstance, WasmMemory } from './quickjs-instance.ts';
import { installHostFunctions, type SandboxHost } from './sandbox-host.ts';

/** The name the deployed module has in stack traces and error messages. */
export const MODULE_FILENAME = 'hook.js';
const PRELUDE_FILENAME = 'pubsub:prelude.js';
/**
 * QuickJS stack budget. 512 KiB still stopped cleanly in tests and 1 MiB overflowed the host
 * stack first; half of the safe figure leaves room for hosts that call in from deep stacks.
 */
const STACK_LIMIT_BYTES = 256 * 1024;
/** Extra heap a thrown value's description may use after the memory limit was hit. */
const DESCRIBE_HEADROOM_BYTES = 1024 * 1024;
/** Time a thrown value's description may take (it can run user getters). */
const DESCRIBE_BUDGET_MS = 20;
const UNREADABLE = 'a value that could not be read';

export interface SandboxLimits {
  memoryLimitBytes: number;
  cpuLimitMs: number;
}

/** The wrapper's answer: the JSON text, and the bytes its layout points into. */
export interface SandboxAnswer {
  json: string;
  bytes: Buffer | undefined;
}

export interface SandboxMemoryUsage {
  /** Bytes the guest heap holds, as QuickJS estimates them (memory_used_size). */
  heapBytes: number;
  /** Live objects in the guest heap. */
  objects: number;
  /** Size of the instance's WebAssembly memory (its high-water mark: it never shrinks). */
  wasmBytes: number;
}

type Result = DisposableResult<QuickJSHandle, QuickJSHandle>;

export class Sandbox {
  readonly #runtime: QuickJSRuntime;
  readonly #context: QuickJSContext;
  readonly #gate: MemoryGate;
  readonly #memory: WasmMemory;
  readonly #limits: SandboxLimits;
  #call: QuickJSHandle | undefined;
  #describe: QuickJSHandle | undefined;
  #deadline = Number.POSITIVE_INFINITY;
  #interrupted = false;
  #broken = false;
  #crashed = false;

  /**
   * Creates the runtime in `instance` and evaluates `code` as an ES module. Throws
   * FunctionDeployError when the module does not compile, fails or exceeds a limit at its top
   * level, or lacks `onPublish`.
   */
  static open(instance: QuickJSInstance, code: string, limits: SandboxLimits, host: SandboxHost): Sandbox {
    const sandbox = new Sandbox(instance, limits);
    try {
      sandbox.#load(code, sandbox.#install(host));
      return sandbox;
    } catch (error) {
      sandbox.dispose();
      throw error;
    }
  }

  private constructor(instance: QuickJSInstance, limits: SandboxLimits) {
    this.#limits = limits;
    this.#gate = instance.gate;
    this.#memory = instance.memory;
    this.#runtime = instance.module.newRuntime();
    this.#runtime.setMaxStackSize(STACK_LIMIT_BYTES);
    this.#runtime.setInterruptHandler(() => {
      if (performance.now() <= this.#deadline) return false;
      this.#interrupted = true;
      return true;
    });
    this.#context = this.#runtime.newContext();
  }

  /** True when the instance must not be used again (see the header). */
  get broken(): boolean {
    return this.#broken || this.#gate.denied || this.#gate.reserveUsed;
  }

  /**
   * Runs the wrapped onPublish on one envelope (see prelude.ts) within the limits.
   * Throws FunctionLimitError or FunctionRuntimeError.
   */
  call(envelope: string, bytes: Uint8Array | undefined): SandboxAnswer {
    const call = this.#call;
    if (call === undefined || this.broken) throw new Error('sandbox is not usable');
    const inputBytes = Buffer.byteLength(envelope) + (bytes?.length ?? 0);
    if (inputBytes > this.#limits.memoryLimitBytes / 2) {
      throw new FunctionLimitError(
        'memory',
        `the batch (${inputBytes} bytes) is over half the function's memory limit of ${this.#limits.memoryLimitBytes} bytes`,
      );
    }
    const context = this.#context;
    let value: QuickJSHandle | undefined;
    this.#begin();
    try {
      const args: QuickJSHandle[] = [];
      let result: Result;
      try {
        this.#hostWork(() => {
          args.push(context.newString(envelope));
          if (bytes !== undefined) args.push(context.newArrayBuffer(toArrayBuffer(bytes)));
        });
        result = this.#gate.asGuest(() => context.callFunction(call, context.undefined, args));
      } finally {
        for (const arg of args) arg.dispose();
      }
      value = this.#settle(result, 'onPublish');
      if (this.#gate.denied) throw this.#memoryError('onPublish');
      const settled = value;
      return this.#hostWork(() => this.#readAnswer(settled));
    } catch (error) {
      throw this.#crash(error);
    } finally {
      if (!this.#crashed) value?.dispose();
      this.#end();
    }
  }

  /** The guest heap's size, for leak checks and metrics. */
  memoryUsage(): SandboxMemoryUsage {
    const handle = this.#hostWork(() => this.#runtime.computeMemoryUsage());
    try {
      const usage = this.#context.dump(handle) as { memory_used_size?: number; obj_count?: number };
      return {
        heapBytes: usage.memory_used_size ?? 0,
        objects: usage.obj_count ?? 0,
        wasmBytes: this.#memory.buffer.byteLength,
      };
    } finally {
      handle.dispose();
    }
  }

  /** Frees the runtime; after a crash its state cannot be trusted, so it is only dropped. */
  dispose(): void {
    if (this.#crashed || !this.#runtime.alive) return;
    this.#call?.dispose();
    this.#describe?.dispose();
    this.#call = undefined;
    this.#describe = undefined;
    if (this.#context.alive) this.#context.dispose();
    this.#runtime.dispose();
  }

  /**
   * Evaluates the prelude and returns its `makeCall`. QuickJS's limit is not set yet: the bare
   * runtime's own needs are not the guest's, and the prelude is ours.
   */
  #install(host: SandboxHost): QuickJSHandle {
    const context = this.#context;
    let prelude: QuickJSHandle | undefined;
    let hostObject: QuickJSHandle | undefined;
    let exported: QuickJSHandle | undefined;
    try {
      prelude = context.unwrapResult(
        context.evalCode(PRELUDE_SOURCE, PRELUDE_FILENAME, { type: 'global', strict: true }),
      );
      hostObject = context.newObject();
      installHostFunctions(context, hostObject, host, (work) => this.#hostWork(work));
      exported = context.unwrapResult(context.callFunction(prelude, context.undefined, hostObject));
      this.#describe = context.getProp(exported, 'describe');
      return context.getProp(exported, 'makeCall');
    } catch (error) {
      throw this.#crash(error);
    } finally {
      exported?.dispose();
      hostObject?.dispose();
      prelude?.dispose();
    }
  }

  /** Evaluates the user's module under the limits and wraps its onPublish (consumes makeCall). */
  #load(code: string, makeCall: QuickJSHandle): void {
    const context = this.#context;
    let exports: QuickJSHandle | undefined;
    let onPublish: QuickJSHandle | undefined;
    this.#runtime.setMemoryLimit(this.#limits.memoryLimitBytes);
    this.#begin();
    try {
      try {
        const what = 'the module top level';
        const result = this.#gate.asGuest(() => context.evalCode(code, MODULE_FILENAME, { type: 'module' }));
        exports = this.#settle(result, what);
        if (this.#gate.denied) throw this.#memoryError(what);
      } catch (error) {
        throw deployError(this.#crash(error));
      }
      onPublish = context.getProp(exports, 'onPublish');
      const kind = context.typeof(onPublish);
      if (kind !== 'function') {
        throw new FunctionDeployError(
          `${MODULE_FILENAME} must export a function named onPublish (found ${kind}): ` +
            'export function onPublish(messages, ctx) { return messages; }',
        );
      }
      this.#call = context.unwrapResult(context.callFunction(makeCall, context.undefined, onPublish));
    } finally {
      if (!this.#crashed) {
        onPublish?.dispose();
        exports?.dispose();
        makeCall.dispose();
      }
      this.#end();
    }
  }

  /**
   * Drains the job queue, then resolves `result` to its settled value (owned by the caller), or
   * throws the typed failure. `what` names the code in messages.
   */
  #settle(result: Result, what: string): QuickJSHandle {
    if (result.error) {
      const failure = this.#failure(result.error, what);
      if (!this.broken) this.#drainJobs(what);
      throw failure;
    }
    const value = result.value;
    let settled: QuickJSHandle | undefined;
    try {
      const drainFailure = this.#drainJobs(what);
      if (drainFailure) throw drainFailure;
      const state = this.#context.getPromiseState(value);
      if (state.type === 'fulfilled') {
        settled = state.notAPromise ? value : state.value;
        return settled;
      }
      if (state.type === 'rejected') throw this.#failure(state.error, what);
      throw new FunctionRuntimeError(
        `${what} returned a promise that never settled (the sandbox has no timers or I/O to settle it)`,
        '',
      );
    } finally {
      if (settled !== value) value.dispose();
    }
  }

  /** Runs every pending job (promise reactions) under the current deadline. */
  #drainJobs(what: string): Error | undefined {
    if (!this.#runtime.hasPendingJob()) return undefined;
    const result = this.#gate.asGuest(() => this.#runtime.executePendingJobs(-1));
    if (result.error) return this.#failure(result.error, what);
    return undefined;
  }

  /** Classifies a thrown guest value (and disposes it). */
  #failure(error: QuickJSHandle, what: string): Error {
    const interrupted = this.#interrupted;
    const [name, message, stack] = this.#describeValue(error);
    if (interrupted) {
      this.#broken = true;
      return new FunctionLimitError(
        'cpu',
        `${what} exceeded its CPU time limit of ${this.#limits.cpuLimitMs} ms`,
      );
    }
    if (this.#gate.denied || (name === 'InternalError' && message === 'out of memory')) {
      return this.#memoryError(what);
    }
    const text = name === '' ? message : `${name}: ${message}`;
    // The prelude's own frames (the wrapper around onPublish) mean nothing to the user.
    const userStack = stack
      .split('\n')
      .filter((line) => !line.includes(PRELUDE_FILENAME))
      .join('\n');
    return new FunctionRuntimeError(`${what} threw ${text}`, userStack);
  }

  #memoryError(what: string): FunctionLimitError {
    this.#broken = true;
    return new FunctionLimitError(
      'memory',
      `${what} exceeded its memory limit of ${this.#limits.memoryLimitBytes} bytes`,
    );
  }

  /** Marks the sandbox crashed when `error` is not one of ours (a trap or a library failure). */
  #crash(error: unknown): unknown {
    if (
      error instanceof FunctionLimitError ||
      error instanceof FunctionRuntimeError ||
      error instanceof FunctionDeployError
    ) {
      return error;
    }
    this.#crashed = true;
    this.#broken = true;
    const reason = error instanceof Error ? error.message : String(error);
    // Native recursion (deeply nested JSON, arrays in toString) can exhaust the host's stack
    // before QuickJS's own stack check: the instance is dropped like after any crash.
    if (error instanceof RangeError && /call stack/i.test(reason)) {
      return new FunctionRuntimeError(
        'the function overflowed the stack (recursion or nesting too deep)',
        '',
      );
    }
    return new FunctionRuntimeError(`the sandbox crashed: ${reason}`, '');
  }

  /** [name, message, stack] of a thrown value, read by the prelude under a short deadline. */
  #describeValue(error: QuickJSHandle): [string, string, string] {
    const context = this.#context;
    const describe = this.#describe;
    const savedDeadline = this.#deadline;
    this.#deadline = performance.now() + DESCRIBE_BUDGET_MS;
    this.#runtime.setMemoryLimit(this.#limits.memoryLimitBytes + DESCRIBE_HEADROOM_BYTES);
    try {
      if (describe === undefined) return ['', UNREADABLE, ''];
      const result = this.#gate.asGuest(() => context.callFunction(describe, context.undefined, error));
      if (result.error) {
        result.error.dispose();
        return ['', UNREADABLE, ''];
      }
      const text = this.#hostWork(() =>
        result.value.consume((handle) =>
          context.typeof(handle) === 'string' ? context.getString(handle) : '[]',
        ),
      );
      const parsed = JSON.parse(text) as unknown;
      if (Array.isArray(parsed) && parsed.length === 3 && parsed.every((part) => typeof part === 'string')) {
        return parsed as [string, string, string];
      }
      return ['', UNREADABLE, ''];
    } finally {
      error.dispose();
      this.#runtime.setMemoryLimit(this.#limits.memoryLimitBytes);
      this.#deadline = savedDeadline;
    }
  }

  #readAnswer(value: QuickJSHandle): SandboxAnswer {
    const context = this.#context;
    const type = context.typeof(value);
    if (type === 'string') return { json: context.getString(value), bytes: undefined };
    if (type === 'object') {
      const json = context.getProp(value, 0);
      const buffer = context.getProp(value, 1);
      try {
        if (context.typeof(json) === 'string' && context.typeof(buffer) === 'object') {
          const view = context.getArrayBuffer(buffer);
          try {
            return { json: context.getString(json), bytes: Buffer.from(view.value) };
          } finally {
            view.dispose();
          }
        }
      } finally {
        json.dispose();
        buffer.dispose();
      }
    }
    throw new FunctionRuntimeError('onPublish produced an answer the sandbox could not read', '');
  }

  /** Host-side work: the gate's host mode, and QuickJS's limit lifted (it runs no user code). */
  #hostWork<T>(work: () => T): T {
    return this.#gate.asHost(() => {
      this.#runtime.setMemoryLimit(-1);
      try {
        return work();
      } finally {
        this.#runtime.setMemoryLimit(this.#limits.memoryLimitBytes);
      }
    });
  }

  #begin(): void {
    this.#interrupted = false;
    this.#deadline = performance.now() + this.#limits.cpuLimitMs;
  }

  #end(): void {
    this.#deadline = Number.POSITIVE_INFINITY;
  }
}

/** A deploy error from a top-level failure, with the line QuickJS reported. */
function deployError(error: unknown): Error {
  if (error instanceof FunctionDeployError) return error;
  if (!(error instanceof FunctionLimitError) && !(error instanceof FunctionRuntimeError))
    return error as Error;
  const stack = error instanceof FunctionRuntimeError ? error.sandboxStack : '';
  const at = new RegExp(`${MODULE_FILENAME.replace('.', '\\.')}:(\\d+)(?::(\\d+))?`).exec(stack);
  const line = at ? Number(at[1]) : undefined;
  const column = at?.[2] ? Number(at[2]) : undefined;
  const where =
    line === undefined ? MODULE_FILENAME : `${MODULE_FILENAME}:${line}${column ? `:${column}` : ''}`;
  let reason = error.message.replace(/^the module top level threw /, '');
  if (/could not load module/.test(reason)) reason += ' (a function cannot import modules)';
  return new FunctionDeployError(`${where}: ${reason}`, line === undefined ? undefined : { line, column });
}

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  if (
    bytes.byteOffset === 0 &&
    bytes.byteLength === bytes.buffer.byteLength &&
    bytes.buffer instanceof ArrayBuffer
  ) {
    return bytes.buffer;
  }
  return bytes.slice().buffer;
}
