/**
 * On-publish hooks (issue 9): every PUBLISH of a broker with a hook goes through a pipeline
 * (batching, order, backpressure, failure policy) to a signed webhook or a sandboxed function,
 * which forwards, transforms or drops it.
 */
export { BrokerHooks, type DeployedFunction, type FunctionFactory, type HookView } from './broker-hooks.ts';
export {
  EgressPolicy,
  EgressRefusedError,
  type HostResolver,
  type ResolvedAddress,
} from './egress-policy.ts';
export type { FunctionHookOptions, HookState } from './function-hook.ts';
export { type HookMessage, type PublishHook, readVerdict, toHookMessage } from './hook-message.ts';
export type { HookStatsView } from './hook-stats.ts';
export { type HookEntry, OnPublishPipeline, type Pausable } from './pipeline.ts';
export { signatureHeaders, WebhookHook } from './webhook.ts';
