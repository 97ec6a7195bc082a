/**
 * The sandboxed-function hook: a deployed ES module run in its own QuickJS WebAssembly
 * instance (function-hook.ts), through the sandbox (sandbox.ts, sandbox-host.ts, prelude.ts),
 * the batch envelope (envelope.ts), the buffered side effects of a call (effects.ts) and the
 * typed failures (errors.ts).
 * Promises: a call is bounded in CPU time, memory, publishes and state; a failed call has no
 * side effects; a function can exhaust only its own instance. The broker's derived-publish
 * budget comes in as a `DerivedPublishBudget`, so this room imports only ../contract from
 * hooks/.
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
