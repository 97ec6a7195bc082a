/**
 * One HTTP(S) POST for the webhook, on node:http with a keep-alive agent per hook: a fraction of
 * fetch's per-request cost (measured: fetch's stream machinery was ~30 % of the broker's CPU at
 * 1,000 calls per second). Reads at most `maxResponseBytes` of the answer; aborts with `signal`.
 *
 * Resolves with the status and body of any answer, redirects included (node:http never follows
 * one; the caller treats a 3xx as a failure); rejects on network errors (with the system error's
 * `code`, e.g. ECONNREFUSED), on abort (the signal's reason), when the answer is larger than
 * allowed, and with EgressRefusedError before connecting to an address the egress policy
 * refuses: a literal IP host is decided before each request, a host name by the policy's
 * `lookup` at connect time, so the socket connects to the address that was vetted while TLS
 * still verifies (and sends as SNI) the host name. The agent is the connection pool: one
 * keep-alive connection per call in flight (`maxSockets`, the pipeline's concurrency), each
 * new one vetted by `lookup` as it connects; the request options are built once per hook, not
 * per call. Requests are not pipelined: node:http sends the next request on a connection only
 * after the previous answer, and with a connection per call in flight there is never a second
 * request waiting for one.
 */
import {
  Agent as HttpAgent,
  request as httpRequest,
  type IncomingMessage,
  type RequestOptions,
} from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { urlToHttpOptions } from 'node:url';
import type { EgressPolicy, EgressRefusedError } from './egress-policy.ts';

export interface PostAnswer {
  status: number;
  body: Buffer;
}

export class HttpPoster {
  readonly #agent: HttpAgent;
  /** Where and how every request goes (the URL's parts, the pool, the vetting lookup). */
  readonly #target: RequestOptions;
  readonly #request: typeof httpRequest;
  /** The URL's host is an IP address the policy refuses (the policy is fixed at start-up). */
  readonly #refused: EgressRefusedError | undefined;

  constructor(url: string, maxSockets: number, egress: EgressPolicy) {
    const parsed = new URL(url);
    this.#refused = egress.literalRefusal(parsed.hostname);
    const https = parsed.protocol === 'https:';
    this.#agent = https
      ? new HttpsAgent({ keepAlive: true, maxSockets })
      : new HttpAgent({ keepAlive: true, maxSockets });
    this.#request = https ? (httpsRequest as typeof httpRequest) : httpRequest;
    this.#target = {
      ...urlToHttpOptions(parsed),
      method: 'POST',
      agent: this.#agent,
      lookup: egress.lookup,
    };
  }

  /** POSTs `body`; `headers` are the request's own (Content-Length is set on them). */
  post(
    headers: Record<string, string>,
    body: string | Buffer,
    signal: AbortSignal,
    maxResponseBytes: number,
  ): Promise<PostAnswer> {
    if (this.#refused !== undefined) return Promise.reject(this.#refused);
    return new Promise((resolve, reject) => {
      const payload = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
      headers['Content-Length'] = String(payload.length);
      const req = this.#request({ ...this.#target, headers, signal });
      req.on('error', reject);
      req.on('response', (res: IncomingMessage) => {
        const declared = Number(res.headers['content-length']);
        if (declared > maxResponseBytes) {
          res.destroy();
          reject(new TooLargeError(maxResponseBytes));
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > maxResponseBytes) {
            res.destroy();
            reject(new TooLargeError(maxResponseBytes));
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks, size) }));
        res.on('error', reject);
        res.on('aborted', () => reject(new Error('answer cut short')));
      });
      req.end(payload);
    });
  }

  close(): void {
    this.#agent.destroy();
  }
}

export class TooLargeError extends Error {
  override name = 'WebhookError';
  constructor(limit: number) {
    super(`webhook answer larger than ${limit} bytes (--hook-max-response-bytes)`);
  }
}
