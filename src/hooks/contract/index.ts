/**
 * The contract between the on-publish pipeline and a hook implementation (webhook or sandboxed
 * function): the message shape a hook is given (`HookMessage`, `toHookMessage`), what a hook
 * is (`PublishHook`), and how its answer is read (`readVerdict`).
 * Promises: a hook can only forward, change the payload of, or drop the messages it was sent:
 * an answer naming an unknown or repeated `mid`, or a changed `topic`, is refused entry by
 * entry. This room imports nothing from the rest of hooks/; the webhook and function rooms
 * and the pipeline above them all build on it.
 */
export {
  type HookMessage,
  type HookVerdict,
  type PublishHook,
  readVerdict,
  toHookMessage,
} from './hook-message.ts';
