/**
 * The message shape an on-publish hook sees and returns, shared by the webhook (as JSON) and
 * sandboxed functions: Cloudflare's `PubSubMessage` (reference section 4) plus `encoding`.
 *
 * Payload encoding (documented in docs/hooks.md): a payload whose Payload Format Indicator is 1
 * is a UTF-8 string; any other payload is base64 with `encoding: "base64"`. A hook may return
 * either form for any message (a string without `encoding` is taken as UTF-8).
 *
 * Return contract: the hook returns the messages to forward. `mid` and `topic` are read-only: a
 * returned message whose `mid` is unknown, repeated, or whose `topic` differs from the one sent
 * is dropped (counted), as is every message left out. Only `payload` (and `encoding`) may change.
 */
import type { Message } from '../../router/index.ts';

export interface HookMessage {
  /** Index of the message within its batch: 0, 1, ... */
  mid: number;
  /** The broker's host name, `<broker>.<namespace>.<domain>`. */
  broker: string;
  topic: string;
  clientId: string;
  /** The `jti` of the token the publisher connected with, when it used one. */
  jti?: string;
  /** Unix seconds when the broker received the message. */
  receivedAt: number;
  contentType: string | null;
  payloadFormatIndicator: 0 | 1;
  payload: string;
  /** Present for binary payloads: the payload string is base64. */
  encoding?: 'base64';
}

/** What a hook implementation does with one batch: resolves to the messages to forward. */
export interface PublishHook {
  /** 'webhook' or 'function', for logs and metrics. */
  readonly kind: 'webhook' | 'function';
  /**
   * Rejects with an Error whose message the tenant sees (hook metrics, the v5 PUBACK reason);
   * a string `detail` on it, when present, goes only to the operator's log.
   */
  run(batch: HookMessage[]): Promise<unknown>;
  /** Releases what the hook holds (sandbox runtime, sockets). */
  close(): void;
}

/** The hook's view of a message (payload as string or base64). */
export function toHookMessage(
  message: Message,
  mid: number,
  broker: string,
  jti: string | undefined,
): HookMessage {
  const utf8 = message.properties?.payloadFormatIndicator === 1;
  const out: HookMessage = {
    mid,
    broker,
    topic: message.topic,
    clientId: message.senderId ?? '',
    receivedAt: Math.floor(message.receivedAt / 1000),
    contentType: message.properties?.contentType ?? null,
    payloadFormatIndicator: utf8 ? 1 : 0,
    payload: utf8 ? message.payload.toString('utf8') : message.payload.toString('base64'),
  };
  if (jti !== undefined) out.jti = jti;
  if (!utf8) out.encoding = 'base64';
  return out;
}

/** The outcome of one batch after checking the hook's answer against what was sent. */
export interface HookVerdict {
  /** mid → the payload to forward (possibly changed). A mid absent here is dropped. */
  forward: Map<number, Buffer>;
  /** Returned entries that were refused (unknown or repeated mid, changed topic, bad payload). */
  invalid: number;
}

/**
 * Checks a hook's answer (already parsed JSON) against the batch it was given. Throws when the
 * answer is not an array: the whole batch then follows the failure policy.
 */
export function readVerdict(sent: readonly HookMessage[], answer: unknown): HookVerdict {
  if (!Array.isArray(answer)) throw new Error('hook answer is not a JSON array of messages');
  const forward = new Map<number, Buffer>();
  let invalid = 0;
  for (const entry of answer) {
    const payload = payloadOf(entry);
    const mid = (entry as { mid?: unknown } | null)?.mid;
    const original = typeof mid === 'number' ? sent[mid] : undefined;
    if (
      payload === undefined ||
      original === undefined ||
      original.mid !== mid ||
      (entry as { topic?: unknown }).topic !== original.topic ||
      forward.has(mid as number)
    ) {
      invalid++;
      continue;
    }
    forward.set(mid as number, payload);
  }
  return { forward, invalid };
}

function payloadOf(entry: unknown): Buffer | undefined {
  if (typeof entry !== 'object' || entry === null) return undefined;
  const { payload, encoding } = entry as { payload?: unknown; encoding?: unknown };
  if (typeof payload === 'string') {
    if (encoding === 'base64') return Buffer.from(payload, 'base64');
    if (encoding === undefined || encoding === null || encoding === 'utf8')
      return Buffer.from(payload, 'utf8');
    return undefined;
  }
  // An array of byte values (a Worker's `Array.from(uint8array)`): accepted so that
  // Cloudflare-style hooks keep working. (JSON.stringify of a Uint8Array itself gives an object
  // of indices, which is refused like any other unreadable payload.)
  if (Array.isArray(payload) && payload.every((b) => Number.isInteger(b) && b >= 0 && b <= 255))
    return Buffer.from(payload as number[]);
  return undefined;
}
