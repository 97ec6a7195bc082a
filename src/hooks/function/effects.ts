/**
 * What one call of a sandboxed function does to the world outside the sandbox, and the bounds
 * on it.
 *
 * Buffering rule: `ctx.publish` and `ctx.state` writes are recorded here during the call and
 * applied only when the call succeeds (state first, then the publishes, in call order). A call
 * that throws, rejects or hits a limit has no side effects, so the failure policy can retry or
 * forward the batch without doubling derived messages or half-updated state. Reads see the call's
 * own writes. Console lines are the exception: they are diagnostics and are written at once, so
 * the lines leading to a failure are visible.
 *
 * Bounds (host memory is not covered by the sandbox's memory limit, so everything that crosses
 * out is capped): at most MAX_PUBLISHES_PER_CALL publishes and `memoryLimitBytes` of publish
 * payload per call; state keys+values (UTF-8 bytes) at most `stateLimitBytes` in total; at most
 * MAX_CONSOLE_LINES_PER_CALL console lines of MAX_CONSOLE_LINE_CHARS per call. Exceeding a bound
 * throws inside the function (a RangeError it may catch); nothing beyond the bound is kept.
 *
 * Across calls, the broker's derived-publish budget (a `DerivedPublishBudget`, made by the broker
 * wiring: src/hooks/publish-budget.ts) bounds the rate: each publish
 * is admitted against what the budget holds minus what this call admitted before it, and the
 * call's total is charged only by `chargePublishes`, once the call succeeded. A refused publish
 * throws a RangeError in the function and is not buffered.
 */
import { isValidMqttString, isValidTopicName } from '../../protocol/index.ts';

/**
 * Bounds the host memory one call buffers and one call's burst. Kept at 1000, above the default
 * batch of 100 so a function may fan each message out a few times; the rate over many calls is
 * the budget's job, since a per-call cap alone bounds nothing when a publisher causes many calls.
 */
export const MAX_PUBLISHES_PER_CALL = 1000;
export const MAX_CONSOLE_LINES_PER_CALL = 100;
export const MAX_CONSOLE_LINE_CHARS = 8192;
const MAX_MQTT_STRING_BYTES = 65_535; // [MQTT-1.5.4] a UTF-8 string has a 16-bit length

/** The per-broker key-value state a function keeps across calls (values are JSON texts). */
export interface HookState {
  get(key: string): string | undefined;
  set(key: string, value: string): void;
  delete(key: string): void;
  keys(): Iterable<string>;
}

export interface DerivedPublishOptions {
  qos: 0 | 1 | 2;
  retain: boolean;
  contentType?: string;
  payloadFormatIndicator?: 0 | 1;
}

export interface DerivedPublish {
  topic: string;
  payload: Buffer;
  options: DerivedPublishOptions;
}

export type ConsoleLevel = 'info' | 'warn' | 'error';

/**
 * What a call needs of the broker's derived-publish budget (src/hooks/publish-budget.ts
 * implements it; declared here so this room does not import the hooks/ top back).
 */
export interface DerivedPublishBudget {
  /** Throws a RangeError when one more publish of `bytes` does not fit beside what the call admitted. */
  admit(messages: number, admittedBytes: number, bytes: number): void;
  /** Takes what a successful call published. */
  charge(messages: number, bytes: number): void;
}

/** Bytes a state entry counts against the limit: its key and JSON value, UTF-8. */
export function stateEntryBytes(key: string, value: string | undefined): number {
  return value === undefined ? 0 : Buffer.byteLength(key) + Buffer.byteLength(value);
}

/** Total bytes of a state, for the limit (computed once per FunctionHook, then kept current). */
export function stateBytes(state: HookState): number {
  let total = 0;
  for (const key of state.keys()) total += stateEntryBytes(key, state.get(key));
  return total;
}

export class CallEffects {
  readonly #state: HookState;
  readonly #stateLimit: number;
  readonly #publishBytesLimit: number;
  /** key → new JSON value, or undefined for a delete. */
  readonly #writes = new Map<string, string | undefined>();
  readonly #publishes: DerivedPublish[] = [];
  readonly #budget: DerivedPublishBudget;
  #stateBytes: number;
  #publishBytes = 0;
  /** Topic and payload bytes of the buffered publishes, what the budget counts. */
  #budgetBytes = 0;

  constructor(
    state: HookState,
    committedStateBytes: number,
    stateLimit: number,
    publishBytesLimit: number,
    budget: DerivedPublishBudget,
  ) {
    this.#state = state;
    this.#stateBytes = committedStateBytes;
    this.#stateLimit = stateLimit;
    this.#publishBytesLimit = publishBytesLimit;
    this.#budget = budget;
  }

  /** Total state bytes once this call's writes are applied. */
  get stateBytes(): number {
    return this.#stateBytes;
  }

  get publishes(): readonly DerivedPublish[] {
    return this.#publishes;
  }

  publish(
    topic: string,
    payload: string | Buffer,
    qos: number,
    retain: boolean,
    contentType: string | undefined,
  ): void {
    // [MQTT-4.7.3-1] non-empty, [MQTT-3.3.2-2] no wildcards, [MQTT-1.5.4-1]/[MQTT-1.5.4-2] UTF-8.
    if (!isValidTopicName(topic) || !isValidMqttString(topic)) {
      throw new TypeError(`ctx.publish: ${quote(topic)} is not a valid topic name (non-empty, no + or #)`);
    }
    // Section 4.7.2: $-topics belong to the server ($SYS); derived messages may not spoof them.
    if (topic.startsWith('$'))
      throw new TypeError(`ctx.publish: ${quote(topic)} starts with $, reserved for the broker`);
    if (Buffer.byteLength(topic) > MAX_MQTT_STRING_BYTES)
      throw new RangeError('ctx.publish: the topic is too long');
    if (qos !== 0 && qos !== 1 && qos !== 2) throw new RangeError('ctx.publish: qos must be 0, 1 or 2');
    if (
      contentType !== undefined &&
      (!isValidMqttString(contentType) || Buffer.byteLength(contentType) > MAX_MQTT_STRING_BYTES)
    ) {
      throw new TypeError(
        'ctx.publish: contentType must be a UTF-8 string without U+0000, up to 65535 bytes',
      );
    }
    if (this.#publishes.length >= MAX_PUBLISHES_PER_CALL) {
      throw new RangeError(`ctx.publish: at most ${MAX_PUBLISHES_PER_CALL} messages per call`);
    }
    const bytes = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
    if (this.#publishBytes + bytes.length > this.#publishBytesLimit) {
      throw new RangeError(`ctx.publish: at most ${this.#publishBytesLimit} payload bytes per call`);
    }
    const budgetBytes = Buffer.byteLength(topic) + bytes.length;
    this.#budget.admit(this.#publishes.length, this.#budgetBytes, budgetBytes);
    this.#budgetBytes += budgetBytes;
    this.#publishBytes += bytes.length;
    const options: DerivedPublishOptions = { qos: qos as 0 | 1 | 2, retain };
    if (contentType !== undefined) options.contentType = contentType;
    // A string is text by construction (lone surrogates were replaced while encoding).
    if (typeof payload === 'string') options.payloadFormatIndicator = 1;
    this.#publishes.push({ topic, payload: bytes, options });
  }

  stateGet(key: string): string | undefined {
    return this.#writes.has(key) ? this.#writes.get(key) : this.#state.get(key);
  }

  stateSet(key: string, value: string): void {
    const next = this.#stateBytes - stateEntryBytes(key, this.stateGet(key)) + stateEntryBytes(key, value);
    if (next > this.#stateLimit) {
      throw new RangeError(
        `ctx.state.set: the state would hold ${next} bytes, over its limit of ${this.#stateLimit} bytes`,
      );
    }
    this.#writes.set(key, value);
    this.#stateBytes = next;
  }

  /** True when the key existed. */
  stateDelete(key: string): boolean {
    const previous = this.stateGet(key);
    if (previous === undefined) return false;
    this.#writes.set(key, undefined);
    this.#stateBytes -= stateEntryBytes(key, previous);
    return true;
  }

  stateKeys(): string[] {
    const keys = new Set(this.#state.keys());
    for (const [key, value] of this.#writes) {
      if (value === undefined) keys.delete(key);
      else keys.add(key);
    }
    return [...keys];
  }

  /** Charges the buffered publishes to the broker's budget (the call succeeded). */
  chargePublishes(): void {
    this.#budget.charge(this.#publishes.length, this.#budgetBytes);
  }

  /** Applies the state writes (the call succeeded). */
  commitState(): void {
    for (const [key, value] of this.#writes) {
      if (value === undefined) this.#state.delete(key);
      else this.#state.set(key, value);
    }
  }
}

/** Console lines of one call or module evaluation: written at once, up to a bound. */
export class ConsoleBudget {
  readonly #sink: (level: ConsoleLevel, message: string) => void;
  #left = MAX_CONSOLE_LINES_PER_CALL;
  #dropped = 0;

  constructor(sink: (level: ConsoleLevel, message: string) => void) {
    this.#sink = sink;
  }

  write(level: ConsoleLevel, text: string): void {
    if (this.#left === 0) {
      this.#dropped++;
      return;
    }
    this.#left--;
    this.#emit(
      level,
      text.length > MAX_CONSOLE_LINE_CHARS ? `${text.slice(0, MAX_CONSOLE_LINE_CHARS)}…` : text,
    );
  }

  /** Reports the lines dropped over the bound, once, at the end of the call. */
  finish(): void {
    if (this.#dropped === 0) return;
    this.#emit(
      'warn',
      `console: ${this.#dropped} more lines dropped (at most ${MAX_CONSOLE_LINES_PER_CALL} per call)`,
    );
    this.#dropped = 0;
  }

  #emit(level: ConsoleLevel, text: string): void {
    try {
      this.#sink(level, text);
    } catch {
      // A failing log sink must not change what the function does.
    }
  }
}

function quote(text: string): string {
  return JSON.stringify(text.length > 100 ? `${text.slice(0, 100)}…` : text);
}
