/**
 * The sandboxed-function hook: a deployed ES module run in its own QuickJS WebAssembly
 * instance (function-hook.ts), through the sandbox (sandbox.ts, sandbox-host.ts, prelude.ts),
 * the batch envelope (envelope.ts), the buffered side effects of a call (effects.ts) and the
 * typed failures (errors.ts).
 * Calls run in worker threads (worker-pool.ts on the event loop's side, sandbox-worker.ts in
 * the thread, worker-protocol.ts between them).
 * Promises: a call is bounded in CPU time, memory, publishes and state; a failed call has no
 * side effects; a function can exhaust only its own instance and delay only the brokers that
 * share its worker. The broker's derived-publish budget comes in as a `DerivedPublishBudget`;
 * this room imports ../contract and, for the budget's copy in a worker, ../publish-budget.ts.
 * Importing this index loads QuickJS (function-hook.ts): the event loop's side imports
 * worker-pool.ts alone.
 */
export type { ConsoleLevel, DerivedPublishBudget, DerivedPublishOptions, HookState } from './effects.ts';
export { MAX_CONSOLE_LINES_PER_CALL, MAX_PUBLISHES_PER_CALL } from './effects.ts';
export { FunctionDeployError, FunctionLimitError, FunctionRuntimeError } from './errors.ts';
export {
  FunctionHook,
  type FunctionHookOptions,
  MAX_FUNCTION_MEMORY_BYTES,
  MIN_FUNCTION_MEMORY_BYTES,
} from './function-hook.ts';
export type { SandboxMemoryUsage } from './sandbox.ts';
export { defaultHookWorkers, FunctionWorkerPool, type PooledFunctionOptions } from './worker-pool.ts';
