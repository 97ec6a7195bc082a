/**
 * The Cloudflare-compatible on-publish webhook: one POST per batch, the body the JSON array of
 * messages, signed with the broker's newest Ed25519 key.
 *
 * Request: `Content-Type: application/json`; `X-Signature-Ed25519` (base64 signature over
 * UTF-8 of `X-Signature-Timestamp` + raw body), `X-Signature-Timestamp` (unix seconds),
 * `X-Signature-Key-Id` (the key's kid, as in `/publickeys`). Answer: HTTP 200 with the JSON
 * array of messages to forward (any Content-Type; Cloudflare's `application/octet-stream` and
 * an empty one included), at most `maxResponseBytes`.
 *
 * Failures (the caller applies the broker's policy): any other status (a redirect too: it is
 * never followed), a body that is not JSON, a timeout (`timeoutMs` for the whole call, retries
 * included), an address the egress policy refuses (egress-policy.ts). Retried, with a
 * short backoff, only when the hook surely did not process the batch: the connection was
 * refused (nothing listening) or the answer was 429 or 503; each request is signed afresh. (A
 * 502 or 504 from a gateway does not say the hook did not run, so it is not retried.)
 *
 * A failure is a WebhookError whose message is only its class (`unreachable`, `timeout`,
 * `http_error`, ...): the tenant sees it (hook metrics, the v5 PUBACK reason string), and the
 * target's status code or errno would turn the hook into a probe of whatever the URL names.
 * The detail (URL, status, errno, refused address) is in `detail`, for the operator's log.
 * Requests go over node:http keep-alive connections (http-post.ts), not fetch.
 *
 * Per batch, the event loop serializes the JSON once (SignedBody: the bytes each attempt signs
 * and sends); the Ed25519 signature is computed on libuv's thread pool; an answer that is the
 * body sent, byte for byte (a pass-through hook), is the batch itself and is not parsed.
 */
import { sign } from 'node:crypto';
import type { SigningKey } from '../../auth/index.ts';
import type { HookMessage, PublishHook } from '../contract/index.ts';
import { type EgressPolicy, EgressRefusedError } from './egress-policy.ts';
import { HttpPoster, type PostAnswer, TooLargeError } from './http-post.ts';

export interface WebhookOptions {
  url: string;
  timeoutMs: number;
  /** Extra attempts after a retryable failure. */
  retries: number;
  maxResponseBytes: number;
  /** Keep-alive connections to the hook at most (the pipeline's concurrency). */
  maxSockets: number;
  /** The broker's current signing key (the newest; it changes at a rotation). */
  signingKey: () => SigningKey;
  /** Called on each retry, for metrics. */
  onRetry: () => void;
  /** Which addresses the webhook may connect to. */
  egress: EgressPolicy;
}

/** Answers saying the request was not processed: Too Many Requests, Service Unavailable. */
const RETRYABLE_STATUS = new Set([429, 503]);
const BACKOFF_MS = [50, 200, 500, 1000];

/** What went wrong with a call, as the tenant is told it. */
export type WebhookFailure =
  | 'unreachable'
  | 'timeout'
  | 'http_error'
  | 'invalid_answer'
  | 'too_large'
  | 'egress_refused';

const TOLD_TO_TENANT: Record<WebhookFailure, string> = {
  unreachable: 'unreachable: no answer from the webhook',
  timeout: 'timeout: no answer in time (on_publish.timeout_ms)',
  http_error: 'http_error: the answer was not HTTP 200',
  invalid_answer: 'invalid_answer: not JSON (expected the array of messages to forward)',
  too_large: 'too_large: the answer is over --hook-max-response-bytes',
  egress_refused: "egress_refused: the URL's address is refused by the server's egress policy",
};

export class WebhookError extends Error {
  override name = 'WebhookError';
  /** For the operator's log only: the URL, the status or errno, the refused address. */
  readonly detail: string;
  constructor(failure: WebhookFailure, detail: string) {
    super(TOLD_TO_TENANT[failure]);
    this.detail = detail;
    // The pipeline counts timeouts by this name.
    if (failure === 'timeout') this.name = 'TimeoutError';
  }
}

/** The request headers of one attempt, its signature over `timestamp + body` made. */
function headersFor(signature: string, timestamp: string, key: SigningKey): Record<string, string> {
  return {
    'Content-Type': 'application/json',
    'User-Agent': 'pubsub-on-publish/1',
    'X-Signature-Ed25519': signature,
    'X-Signature-Timestamp': timestamp,
    'X-Signature-Key-Id': key.kid,
  };
}

/**
 * Room before the body for the timestamp the signature covers: unix seconds have 10 digits
 * until the year 2286, and 16 bytes hold any safe integer's worth of them.
 */
const TIMESTAMP_ROOM = 16;

/**
 * A batch's request body, encoded once: the JSON bytes, with room before them for the
 * timestamp, so each attempt writes its timestamp in front and signs `timestamp + body` in
 * place, and the body that is sent is a view of the same bytes (no copy per attempt).
 */
class SignedBody {
  readonly #bytes: Buffer;
  /** The JSON body, as sent. */
  readonly body: Buffer;

  constructor(json: string) {
    this.#bytes = Buffer.allocUnsafe(TIMESTAMP_ROOM + Buffer.byteLength(json, 'utf8'));
    this.#bytes.write(json, TIMESTAMP_ROOM, 'utf8');
    this.body = this.#bytes.subarray(TIMESTAMP_ROOM);
  }

  /**
   * The headers of one attempt, signed now with `key`. The signature is computed on libuv's
   * thread pool (crypto.sign with a callback): hashing the body is most of an Ed25519
   * signature's cost, and it is not the event loop's to pay.
   */
  headers(key: SigningKey, nowMs = Date.now()): Promise<Record<string, string>> {
    const timestamp = Math.floor(nowMs / 1000).toString();
    const start = TIMESTAMP_ROOM - timestamp.length;
    this.#bytes.write(timestamp, start, 'latin1');
    const signed = this.#bytes.subarray(start);
    return new Promise((resolve, reject) =>
      sign(null, signed, key.privateKey, (err, signature) => {
        if (err) reject(err);
        else resolve(headersFor(signature.toString('base64'), timestamp, key));
      }),
    );
  }
}

export class WebhookHook implements PublishHook {
  readonly kind = 'webhook';
  readonly #options: WebhookOptions;
  readonly #poster: HttpPoster;

  constructor(options: WebhookOptions) {
    this.#options = options;
    this.#poster = new HttpPoster(options.url, options.maxSockets, options.egress);
  }

  get url(): string {
    return this.#options.url;
  }

  async run(batch: HookMessage[]): Promise<unknown> {
    // One timer for the whole call, cleared when it ends: AbortSignal.timeout would leave a
    // timer (and a weak reference) behind for `timeoutMs` after every call.
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), this.#options.timeoutMs);
    try {
      return await this.#call(batch, timeout.signal);
    } finally {
      clearTimeout(timer);
    }
  }

  async #call(batch: HookMessage[], signal: AbortSignal): Promise<unknown> {
    const { url, timeoutMs, retries, maxResponseBytes } = this.#options;
    const signed = new SignedBody(JSON.stringify(batch));
    for (let attempt = 0; ; attempt++) {
      const canRetry = attempt < retries;
      let answer: PostAnswer;
      try {
        const headers = await signed.headers(this.#options.signingKey());
        answer = await this.#poster.post(headers, signed.body, signal, maxResponseBytes);
      } catch (err) {
        if (signal.aborted) throw timeoutError(url, timeoutMs);
        if (err instanceof TooLargeError)
          throw new WebhookError('too_large', `webhook ${url}: ${err.message}`);
        if (err instanceof EgressRefusedError)
          throw new WebhookError('egress_refused', `webhook ${url}: ${err.message}`);
        if (canRetry && (err as NodeJS.ErrnoException).code === 'ECONNREFUSED') {
          await this.#backoff(attempt, signal);
          continue;
        }
        throw new WebhookError(
          'unreachable',
          `webhook ${url} unreachable: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        );
      }
      if (answer.status === 200) {
        // A pass-through answer (the body sent, byte for byte) parses to the batch itself.
        if (answer.body.equals(signed.body)) return batch;
        try {
          return JSON.parse(answer.body.toString('utf8'));
        } catch {
          throw new WebhookError(
            'invalid_answer',
            `webhook ${url} answered HTTP 200 with a body that is not JSON`,
          );
        }
      }
      if (canRetry && RETRYABLE_STATUS.has(answer.status)) {
        await this.#backoff(attempt, signal);
        continue;
      }
      throw new WebhookError('http_error', `webhook ${url} answered HTTP ${answer.status}`);
    }
  }

  close(): void {
    this.#poster.close();
  }

  async #backoff(attempt: number, signal: AbortSignal): Promise<void> {
    this.#options.onRetry();
    const ms = BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)]!;
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(timeoutError(this.#options.url, this.#options.timeoutMs));
      };
      const timer = setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}

function timeoutError(url: string, ms: number): WebhookError {
  return new WebhookError('timeout', `webhook ${url} did not answer within ${ms} ms`);
}
