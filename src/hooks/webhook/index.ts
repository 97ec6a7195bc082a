/**
 * The webhook hook: a signed POST of each batch to the broker's `on_publish.url`
 * (webhook.ts), over keep-alive node:http (http-post.ts), to addresses the egress policy
 * allows (egress-policy.ts).
 * Promises: the server connects only to addresses the egress policy decided on at connect
 * time (a DNS answer is never trusted from before); a failure reaches the tenant as its class
 * only (`timeout`, `http_error`, ...), the detail going to the operator's log. Imports only
 * ../contract from hooks/.
 */
export {
  EgressPolicy,
  EgressRefusedError,
  type HostResolver,
  type ResolvedAddress,
} from './egress-policy.ts';
export { WebhookError, WebhookHook, type WebhookOptions } from './webhook.ts';
