/**
 * On-publish hooks (issue 9): every PUBLISH of a broker with a hook goes through a pipeline
 * (batching, order, backpressure, failure policy) to a signed webhook or a sandboxed function,
 * which forwards, transforms or drops it.
 *
 * Rooms, each importing only the ones below it:
 * - top: the pipeline (pipeline.ts, hook-stats.ts), the broker's wiring (broker-hooks.ts) and
 *   the derived-publish budget (publish-budget.ts);
 * - webhook/: the signed webhook, its HTTP client and egress policy;
 * - function/: the sandboxed QuickJS function;
 * - contract/: the message a hook is given and the answer it must give, shared by all.
 * Promises: every message submitted to the pipeline is decided exactly once, in submission
 * order; a hook can forward, change or drop a message, never add one to the batch.
 */
export { BrokerHooks, type DeployedFunction, type FunctionFactory, type HookView } from './broker-hooks.ts';
export { type HookMessage, type PublishHook, readVerdict, toHookMessage } from './contract/index.ts';
export type { FunctionHookOptions, HookState, PooledFunctionOptions } from './function/index.ts';
// The pool, not function/index.ts: that index loads QuickJS, which only worker threads need.
export { defaultHookWorkers, FunctionWorkerPool } from './function/worker-pool.ts';
export type { HookStatsView } from './hook-stats.ts';
export { type HookEntry, OnPublishPipeline, type Pausable } from './pipeline.ts';
export {
  EgressPolicy,
  EgressRefusedError,
  type HostResolver,
  type ResolvedAddress,
  WebhookHook,
} from './webhook/index.ts';
