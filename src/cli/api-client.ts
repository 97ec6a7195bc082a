/**
 * A small client of the admin REST API (global fetch, no dependency). Every answer is
 * Cloudflare's envelope `{result, success, errors, messages, result_info?}`: on success the
 * caller gets `result`; on `success: false` it throws `ApiFailure` carrying the API's error
 * objects and HTTP status, so the CLI can print them as they are. A network failure becomes a
 * CliError naming the URL, and an answer that is not an envelope (another HTTP server on that
 * port) becomes one saying so: the CLI never prints a stack trace for either. `events` reads a
 * Server-Sent Events stream (the packet trace) the same way, event by event.
 */
import { CliError } from './cli-error.ts';

/** How long one request may take before the CLI gives up on it. */
const REQUEST_TIMEOUT_MS = 30_000;

export interface ApiErrorObject {
  code: number;
  message: string;
}

/** The API answered `success: false`. */
export class ApiFailure extends Error {
  override name = 'ApiFailure';
  readonly status: number;
  readonly errors: readonly ApiErrorObject[];
  /** A line the CLI adds after the API's messages (where the token came from, what flag helps). */
  hint: string | undefined;
  constructor(status: number, errors: readonly ApiErrorObject[]) {
    super(errors.map((e) => `${e.message} (code ${e.code})`).join('; ') || `HTTP ${status}`);
    this.status = status;
    this.errors = errors;
  }

  has(code: number): boolean {
    return this.errors.some((e) => e.code === code);
  }
}

/** A list's paging, as the API reports it (`has_more` instead of totals on uncounted lists). */
export interface ResultInfo {
  page?: number;
  per_page?: number;
  count?: number;
  total_count?: number;
  has_more?: boolean;
}

export interface RequestOptions {
  body?: unknown;
  /** Query parameters; a list repeats the key (`topicAcl=a&topicAcl=b`). */
  query?: Record<string, string | readonly string[]>;
}

export interface AdminClientOptions {
  /** Base URL, without a trailing slash (`http://127.0.0.1:8080`). */
  url: string;
  token: string;
  /** Where the URL came from, for the "cannot reach" message (`--url`, `from data/api-url`...). */
  urlSource: string;
  /** Where the token came from, for the hint on an authentication error. */
  tokenSource: string;
}

/** Cloudflare's code for a missing or wrong token (403). */
const AUTHENTICATION_ERROR = 10000;

export class AdminClient {
  readonly url: string;
  readonly urlSource: string;
  readonly tokenSource: string;
  readonly #token: string;

  constructor(options: AdminClientOptions) {
    this.url = options.url;
    this.urlSource = options.urlSource;
    this.tokenSource = options.tokenSource;
    this.#token = options.token;
  }

  /** Sends one request and returns the envelope's `result`; throws ApiFailure or CliError. */
  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    return (await this.#send(method, path, options)).result as T;
  }

  /** Like `request`, for a list: its `result` and `result_info` (paging). */
  async requestList<T>(
    method: string,
    path: string,
    options: RequestOptions = {},
  ): Promise<{ result: T[]; resultInfo: ResultInfo }> {
    const envelope = await this.#send(method, path, options);
    return { result: envelope.result as T[], resultInfo: (envelope.result_info ?? {}) as ResultInfo };
  }

  async #send(
    method: string,
    path: string,
    options: RequestOptions,
  ): Promise<{ result?: unknown; result_info?: unknown }> {
    const response = await this.#fetch(method, path, options, AbortSignal.timeout(REQUEST_TIMEOUT_MS));
    return this.#envelopeOf(response, await response.text());
  }

  /**
   * Reads a Server-Sent Events stream (`GET path`): `onEvent` gets each event's name and its
   * JSON data, until the server ends the stream (resolves) or `signal` aborts (resolves too).
   * A refusal (any answer that is not `text/event-stream`) throws as `request` does.
   */
  async events(
    path: string,
    options: RequestOptions,
    onEvent: (name: string, data: unknown) => void,
    signal: AbortSignal,
  ): Promise<void> {
    let response: Response;
    try {
      response = await this.#fetch('GET', path, options, signal, 'text/event-stream');
    } catch (err) {
      if (signal.aborted) return;
      throw err;
    }
    if (!(response.headers.get('content-type') ?? '').startsWith('text/event-stream'))
      this.#envelopeOf(response, await response.text());
    let pending = '';
    try {
      for await (const chunk of response.body!.pipeThrough(new TextDecoderStream())) {
        pending += chunk;
        let end = pending.indexOf('\n\n');
        while (end !== -1) {
          const event = parseEvent(pending.slice(0, end));
          if (event !== undefined) onEvent(event.name, event.data);
          pending = pending.slice(end + 2);
          end = pending.indexOf('\n\n');
        }
      }
    } catch (err) {
      if (signal.aborted) return;
      throw new CliError(`the stream from ${this.url} broke: ${(err as Error).message}`);
    }
  }

  async #fetch(
    method: string,
    path: string,
    options: RequestOptions,
    signal: AbortSignal,
    accept = 'application/json',
  ): Promise<Response> {
    const target = new URL(`${this.url}${path}`);
    for (const [key, value] of Object.entries(options.query ?? {}))
      for (const one of typeof value === 'string' ? [value] : value) target.searchParams.append(key, one);
    const headers: Record<string, string> = { authorization: `Bearer ${this.#token}`, accept };
    let body: string | undefined;
    if (options.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(options.body);
    }
    try {
      return await fetch(target, { method, headers, body, signal });
    } catch (err) {
      throw this.#unreachable(err);
    }
  }

  /** The envelope of an answer; throws ApiFailure on `success: false`, CliError on no envelope. */
  #envelopeOf(response: Response, text: string): { result?: unknown; result_info?: unknown } {
    let envelope: { success?: unknown; result?: unknown; result_info?: unknown; errors?: unknown };
    try {
      envelope = JSON.parse(text);
    } catch {
      envelope = {};
    }
    if (typeof envelope !== 'object' || envelope === null || typeof envelope.success !== 'boolean') {
      const type = response.headers.get('content-type') ?? 'no content type';
      throw new CliError(
        `unexpected answer from ${this.url} (${this.urlSource}): HTTP ${response.status}, ${type}; is this the pubsub admin API?`,
      );
    }
    if (!envelope.success) {
      const failure = new ApiFailure(response.status, errorObjects(envelope.errors));
      if (failure.has(AUTHENTICATION_ERROR)) failure.hint = `the token came from ${this.tokenSource}`;
      throw failure;
    }
    return envelope;
  }

  #unreachable(err: unknown): CliError {
    const error = err as Error & { cause?: { code?: string; message?: string } };
    if (error.name === 'TimeoutError')
      return new CliError(
        `the admin API at ${this.url} (${this.urlSource}) did not answer within ${REQUEST_TIMEOUT_MS / 1000} s`,
      );
    const why = error.cause?.code ?? error.cause?.message ?? error.message;
    return new CliError(
      `cannot reach the admin API at ${this.url} (${this.urlSource}): ${why} (is \`pubsub serve\` running?)`,
    );
  }
}

/** One Server-Sent Event (its lines, without the blank line ending it); undefined for a comment. */
function parseEvent(block: string): { name: string; data: unknown } | undefined {
  let name = 'message';
  const data: string[] = [];
  for (const line of block.split('\n')) {
    if (line.startsWith('event:')) name = line.slice(6).trim();
    else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
  }
  if (data.length === 0) return undefined;
  const text = data.join('\n');
  try {
    return { name, data: JSON.parse(text) };
  } catch {
    return { name, data: text };
  }
}

function errorObjects(value: unknown): ApiErrorObject[] {
  if (!Array.isArray(value)) return [];
  return value.map((e: { code?: unknown; message?: unknown }) => ({
    code: typeof e?.code === 'number' ? e.code : 0,
    message: typeof e?.message === 'string' ? e.message : JSON.stringify(e),
  }));
}

/** One path segment, escaped (names are DNS labels, but the user may type anything). */
export const segment = (value: string): string => encodeURIComponent(value);
