/**
 * The on-publish pipeline of one broker: every PUBLISH of the broker's clients passes through
 * it while a hook (webhook or sandboxed function) is set, and leaves it with a decision:
 * forward (possibly with a new payload), drop, or, when the call failed, the broker's failure
 * policy (`fail-closed`: drop; `fail-open`: forward unchanged).
 *
 * Invariants:
 * - Batching: messages arriving together are sent as one batch, sealed when it holds
 *   `batchSize` messages or `batchWindowMs` after its first message (0: at the end of the
 *   current event-loop turn's I/O, `setImmediate`).
 * - Merging (webhooks): a sealed batch that had to wait for a free call slot goes out together
 *   with the batches that waited behind it, up to `mergeUpTo` messages and MERGE_BYTES of
 *   payload: the longer calls take, the more waits, and the fewer, larger calls carry it (each
 *   call has a fixed cost: the request, the signature, the answer). Waiting batches are the tail
 *   of the order, so merging neighbours keeps it.
 * - Order: decisions are released in the order messages were submitted, across batches, even
 *   when up to `concurrency` calls run at once and finish out of order. So order per publisher
 *   and topic is kept through the hook.
 * - Bounded memory: `pending` counts messages submitted and not yet decided. At `maxPending`
 *   the publishers that submit are paused (their sockets stop being read, TCP pushes back on
 *   them) until `pending` falls to half of it.
 * - Every message submitted gets exactly one `decided` call; every outcome is counted in
 *   HookStats.
 * - A failed call's error message is what the tenant sees (lastErrors, the v5 PUBACK reason
 *   string); its `detail`, when the hook gives one (the webhook's status or errno), goes only
 *   to the operator's log.
 * - The hook may be replaced at any time (`reconfigure`): batches already sent finish with the
 *   old one, which is closed once its own calls are done; the next batch uses the new one.
 * - A forwarded payload changed by the hook must match the message's Payload Format Indicator
 *   (UTF-8 when it is 1), else the message is dropped as `invalid`. An answer that is the very
 *   array sent (the webhook's byte-for-byte echo) is decided as readVerdict would decide it,
 *   without decoding each payload again. With no hook, messages pass through unchanged,
 *   in order behind those still pending.
 */
import { isUtf8 } from 'node:buffer';
import type { Logger } from 'pino';
import type { Message } from '../router/index.ts';
import type { HookFailurePolicy } from '../store/index.ts';
import { type HookMessage, type PublishHook, readVerdict, toHookMessage } from './contract/index.ts';
import { HookStats } from './hook-stats.ts';

/**
 * The payload readVerdict would read from an answer entry equal to `sent`: base64 decodes to the
 * original bytes exactly; a UTF-8 string is encoded again (a payload that was not valid UTF-8
 * comes back with replacement characters, as from any answer).
 */
function echoedPayload(sent: HookMessage, original: Message): Buffer {
  return sent.encoding === 'base64' ? original.payload : Buffer.from(sent.payload, 'utf8');
}

function payloadBytes(entries: readonly HookEntry[]): number {
  let bytes = 0;
  for (const entry of entries) bytes += entry.message.payload.length;
  return bytes;
}

/** A message in the pipeline and who waits for its decision. */
export interface HookEntry {
  message: Message;
  /** The `jti` of the publisher's token, shown to the hook. */
  jti: string | undefined;
  /**
   * The decision: the message to route (undefined: dropped), and whether the hook failed (so
   * a v5 publisher can be told). Called exactly once, in submission order.
   */
  decided(message: Message | undefined, failed: string | undefined): void;
}

/** Something that produces messages and can be told to stop for a while (a publisher's socket). */
export interface Pausable {
  pause(): void;
  resume(): void;
}

export interface PipelineOptions {
  /** `<broker>.<namespace>[.<domain>]`, the `broker` field of every message. */
  brokerName: string;
  policy: HookFailurePolicy;
  batchSize: number;
  batchWindowMs: number;
  concurrency: number;
  maxPending: number;
  /**
   * Most messages in a call made of batches that waited for a free slot (see Merging above);
   * absent, or under two batches' worth: never merged (function calls: a larger call could
   * run over --function-cpu-ms).
   */
  mergeUpTo?: number;
  log: Logger;
}

/** Most payload bytes in a call made of merged batches (a single batch may be larger). */
const MERGE_BYTES = 1024 * 1024;

interface Batch {
  entries: HookEntry[];
  /** mid → forwarded payload when the call succeeded. */
  forward: Map<number, Buffer> | undefined;
  /**
   * What was sent, when the hook answered with it (the webhook's byte-for-byte echo): every
   * message forwarded as the hook saw it, without decoding the answer's payloads again.
   */
  echoed: HookMessage[] | undefined;
  /** Why the call failed, when it did. */
  failure: string | undefined;
  settled: boolean;
}

export class OnPublishPipeline {
  readonly stats = new HookStats();
  #hook: PublishHook | undefined;
  #options: PipelineOptions;
  #current: HookEntry[] = [];
  #timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  /** Sealed batches in submission order, released from the head once settled. */
  readonly #order: Batch[] = [];
  /** Sealed batches waiting for a free call slot. */
  readonly #waiting: Batch[] = [];
  #running = 0;
  /** Calls in flight per hook, so a replaced hook is closed once its own calls are done. */
  readonly #callsOf = new Map<PublishHook, number>();
  readonly #retired = new Set<PublishHook>();
  #pending = 0;
  readonly #paused = new Set<Pausable>();
  #closed = false;

  constructor(hook: PublishHook | undefined, options: PipelineOptions) {
    this.#hook = hook;
    this.#options = options;
  }

  /** The hook in use (undefined: messages pass through). */
  get hook(): PublishHook | undefined {
    return this.#hook;
  }

  /** Messages submitted and not yet decided. */
  get pending(): number {
    return this.#pending;
  }

  /** True when new messages should go through `submit` (a hook is set or messages are pending). */
  get active(): boolean {
    return this.#hook !== undefined || this.#pending > 0;
  }

  /** Replaces the hook (the old one is closed once its calls finish) and options. */
  reconfigure(hook: PublishHook | undefined, options: PipelineOptions): void {
    const old = this.#hook;
    this.#hook = hook;
    this.#options = options;
    if (old !== undefined && old !== hook) {
      if ((this.#callsOf.get(old) ?? 0) === 0) old.close();
      else this.#retired.add(old);
    }
  }

  /** Takes a message; `from` is paused when the pipeline is full. */
  submit(entry: HookEntry, from: Pausable | undefined): void {
    this.stats.messages++;
    this.#pending++;
    this.#current.push(entry);
    if (this.#current.length >= this.#options.batchSize) this.#seal();
    else if (this.#timer === undefined) {
      const window = this.#options.batchWindowMs;
      this.#timer = window > 0 ? setTimeout(this.#onWindow, window) : setImmediate(this.#onWindow);
    }
    if (from !== undefined && this.#pending >= this.#options.maxPending && !this.#paused.has(from)) {
      this.#paused.add(from);
      from.pause();
    }
  }

  /** Forgets a publisher that went away (it must not be resumed later). */
  forget(from: Pausable): void {
    this.#paused.delete(from);
  }

  view(): ReturnType<HookStats['view']> {
    return this.stats.view(this.#pending, this.#paused.size);
  }

  /** The broker is going away: no more calls; pending messages are decided by the policy. */
  close(): void {
    this.#closed = true;
    this.#seal(); // the open batch is decided now (by the policy), not left waiting
    this.#hook?.close();
    this.#hook = undefined;
  }

  #onWindow = (): void => {
    this.#timer = undefined;
    this.#seal();
  };

  #clearTimer(): void {
    if (this.#timer === undefined) return;
    clearTimeout(this.#timer as NodeJS.Timeout);
    clearImmediate(this.#timer as NodeJS.Immediate);
    this.#timer = undefined;
  }

  #seal(): void {
    this.#clearTimer();
    if (this.#current.length === 0) return;
    const batch: Batch = {
      entries: this.#current,
      forward: undefined,
      echoed: undefined,
      failure: undefined,
      settled: false,
    };
    this.#current = [];
    this.#order.push(batch);
    if (this.#running < this.#options.concurrency) this.#start(batch);
    else this.#waiting.push(batch);
  }

  #start(batch: Batch): void {
    const hook = this.#hook;
    if (hook === undefined || this.#closed) {
      // No hook (removed while these were queued): pass through unchanged, in order.
      batch.forward = new Map(batch.entries.map((e, i) => [i, e.message.payload]));
      if (this.#closed) batch.failure = 'broker closed';
      batch.settled = true;
      this.#release();
      return;
    }
    this.#running++;
    this.#callsOf.set(hook, (this.#callsOf.get(hook) ?? 0) + 1);
    this.stats.calls++;
    const { brokerName } = this.#options;
    const sent: HookMessage[] = batch.entries.map((e, i) => toHookMessage(e.message, i, brokerName, e.jti));
    const started = performance.now();
    hook.run(sent).then(
      (answer) => {
        if (answer === sent) batch.echoed = sent;
        else
          try {
            const verdict = readVerdict(sent, answer);
            batch.forward = verdict.forward;
            this.stats.invalid += verdict.invalid;
          } catch (err) {
            this.#failed(batch, hook, err);
          }
        this.#settle(batch, hook, started);
      },
      (err: unknown) => {
        this.#failed(batch, hook, err);
        this.#settle(batch, hook, started);
      },
    );
  }

  #failed(batch: Batch, hook: PublishHook, err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    // The message is the tenant's to see (metrics, PUBACK reason); a `detail` is the operator's.
    const detail = (err as { detail?: unknown } | null)?.detail;
    batch.failure = message;
    this.stats.failures++;
    if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError'))
      this.stats.timeouts++;
    this.stats.recordError(hook.kind, message);
    this.#options.log.warn(
      {
        broker: this.#options.brokerName,
        hook: hook.kind,
        messages: batch.entries.length,
        err: typeof detail === 'string' ? detail : message,
      },
      `on-publish hook failed; messages ${this.#options.policy === 'fail-open' ? 'forwarded unchanged' : 'dropped'}`,
    );
  }

  #settle(batch: Batch, hook: PublishHook, started: number): void {
    this.stats.recordLatency(performance.now() - started);
    batch.settled = true;
    this.#running--;
    const calls = (this.#callsOf.get(hook) ?? 1) - 1;
    if (calls > 0) this.#callsOf.set(hook, calls);
    else {
      this.#callsOf.delete(hook);
      if (this.#retired.delete(hook)) hook.close();
    }
    const next = this.#waiting.shift();
    if (next !== undefined) this.#start(this.#mergeWaiting(next));
    this.#release();
  }

  /**
   * `first` (the oldest waiting batch) with the waiting batches behind it, within `mergeUpTo`
   * messages and MERGE_BYTES. A batch taken in stays in the order, empty and settled, so it is
   * released (as nothing) after the batch that carries its messages.
   */
  #mergeWaiting(first: Batch): Batch {
    const limit = this.#options.mergeUpTo ?? 0;
    const waiting = this.#waiting;
    let bytes = -1;
    while (waiting.length > 0 && first.entries.length + waiting[0]!.entries.length <= limit) {
      const next = waiting[0]!;
      if (bytes < 0) bytes = payloadBytes(first.entries);
      const more = payloadBytes(next.entries);
      if (bytes + more > MERGE_BYTES) break;
      bytes += more;
      waiting.shift();
      for (const entry of next.entries) first.entries.push(entry);
      next.entries = [];
      next.settled = true;
    }
    return first;
  }

  /** Decides the settled batches at the head of the order, in order. */
  #release(): void {
    const order = this.#order;
    while (order.length > 0 && order[0]!.settled) {
      const batch = order.shift()!;
      for (let i = 0; i < batch.entries.length; i++) {
        // One failing decision (a bug downstream) must not strand the rest of the batch.
        try {
          this.#decide(batch, i);
        } catch (err) {
          this.#options.log.error({ err, broker: this.#options.brokerName }, 'on-publish decision failed');
        }
      }
    }
    if (this.#paused.size > 0 && this.#pending <= this.#options.maxPending / 2) {
      const paused = [...this.#paused];
      this.#paused.clear();
      for (const p of paused) p.resume();
    }
  }

  /** Decides message `i` of a settled batch. */
  #decide(batch: Batch, i: number): void {
    const stats = this.stats;
    const entry = batch.entries[i]!;
    this.#pending--;
    if (batch.failure !== undefined) {
      const failOpen = this.#options.policy === 'fail-open';
      if (failOpen) stats.failedForwarded++;
      else stats.failedDropped++;
      entry.decided(failOpen ? entry.message : undefined, batch.failure);
      return;
    }
    const original = entry.message;
    const payload =
      batch.echoed !== undefined ? echoedPayload(batch.echoed[i]!, original) : batch.forward!.get(i);
    if (payload === undefined) {
      stats.dropped++;
      entry.decided(undefined, undefined);
      return;
    }
    if (payload.equals(original.payload)) {
      stats.forwarded++;
      entry.decided(original, undefined);
      return;
    }
    // A new payload must still be what the message's Payload Format Indicator claims.
    if (original.properties?.payloadFormatIndicator === 1 && !isUtf8(payload)) {
      stats.invalid++;
      stats.dropped++;
      entry.decided(undefined, undefined);
      return;
    }
    stats.forwarded++;
    entry.decided(original.withPayload(payload), undefined);
  }
}
