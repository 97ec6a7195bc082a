/**
 * The on-publish hook of one broker (tenant): its webhook (`on_publish.url`, failure policy,
 * timeout) or its deployed sandboxed function, and the pipeline its publishes go through.
 *
 * Invariants:
 * - At most one hook kind per broker: a function while a URL is set (or the reverse) is
 *   refused by the caller (HOOK_CONFLICT), so which code decides a message is never ambiguous.
 * - A deployment replaces the function atomically: the new code is compiled and its top level
 *   run before anything changes; a module that fails is refused and the old one stays. The
 *   next batch uses the new version; batches already sent finish with the old.
 * - A function stored in the database is compiled again at start-up, asynchronously; messages
 *   arriving before it is ready wait in the pipeline (they are not let through undecided).
 * - Messages published by a function (`ctx.publish`) go straight to the broker's router, not
 *   through the hook again (no loops); they are counted as `published`.
 * - One derived-publish budget per broker (publish-budget.ts), made with the broker's hooks and
 *   kept across deployments, so redeploying does not refill it; its refusals are counted as
 *   `publishRefused` and logged at most once a minute.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { BrokerCredentials } from '../auth/index.ts';
import type { Config } from '../config.ts';
import { ApiError } from '../errors.ts';
import { Message } from '../router/index.ts';
import type { BrokerRecord, HookStore } from '../store/index.ts';
import type { HookMessage, PublishHook } from './contract/index.ts';
import type { HookState, PooledFunctionOptions } from './function/index.ts';
import type { HookStatsView } from './hook-stats.ts';
import { OnPublishPipeline, type PipelineOptions } from './pipeline.ts';
import { PublishBudget } from './publish-budget.ts';
import { type EgressPolicy, WebhookHook } from './webhook/index.ts';

/**
 * Compiles a function module into a hook (the server passes its FunctionWorkerPool's `deploy`;
 * FunctionHook.create, in-process, fits too; kept as a parameter so tenancy does not load the
 * sandbox itself); rejects with a message for the user.
 */
export type FunctionFactory = (options: PooledFunctionOptions) => Promise<PublishHook>;

export interface DeployedFunction {
  version: number;
  sha256: string;
  deployedOn: string;
  bytes: number;
}

export interface HookView {
  kind: 'webhook' | 'function' | 'none';
  on_publish: { url: string | null; policy: string; timeout_ms: number };
  function: DeployedFunction | null;
  ack: string;
  /** The broker's derived-publish budget (the server's settings; it applies to functions). */
  publish_budget: { messages_per_second: number; bytes_per_second: number; burst_ms: number };
  metrics: HookStatsView;
}

export interface BrokerHooksDeps {
  /** Routes a message in the broker, past the hook (a function's `ctx.publish`). */
  publish: (message: Message) => void;
  credentials: BrokerCredentials;
  store: HookStore;
  config: Config;
  log: Logger;
  functions: FunctionFactory | undefined;
  /** Which addresses the webhook may connect to (decided again at every connection). */
  egress: EgressPolicy;
  /** `<broker>.<namespace>[.<domain>]`. */
  brokerName: string;
}

export class BrokerHooks {
  readonly pipeline: OnPublishPipeline;
  readonly #deps: BrokerHooksDeps;
  readonly #publishBudget: PublishBudget;
  #record: BrokerRecord;
  #function: DeployedFunction | undefined;
  #functionHook: PublishHook | undefined;
  #webhook: WebhookHook | undefined;
  #state: Map<string, string> | undefined;
  #closed = false;

  constructor(record: BrokerRecord, deps: BrokerHooksDeps) {
    this.#deps = deps;
    this.#record = record;
    this.pipeline = new OnPublishPipeline(undefined, this.#pipelineOptions());
    const { config, log, brokerName } = deps;
    this.#publishBudget = new PublishBudget(
      {
        messagesPerSecond: config.functionPublishRate,
        bytesPerSecond: config.functionPublishBytesRate,
        burstMs: config.functionPublishBurstMs,
      },
      (message, first) => {
        this.pipeline.stats.publishRefused++;
        if (first)
          log.warn(
            { broker: brokerName, function: this.#function?.version },
            `${message} (refusals are counted in publishRefused, logged at most once a minute)`,
          );
      },
    );
    this.#webhook = this.#buildWebhook();
    this.loadStored();
  }

  /**
   * Runs the function the store holds now (at start, and in cluster mode when a deployment or
   * removal made on another node reached this one's store); nothing changes when it is the one
   * running already.
   */
  loadStored(): void {
    const { store, log, brokerName } = this.#deps;
    const stored = store.functionOf(this.#record.id);
    if (stored?.version === this.#function?.version && stored?.sha256 === this.#function?.sha256) return;
    this.#function = undefined;
    this.#functionHook = undefined;
    this.#state = undefined;
    if (stored !== undefined) {
      this.#function = describe(stored.version, stored.sha256, stored.deployedOn, stored.code);
      this.#functionHook = new PendingHook(this.#compile(stored.code), (err) =>
        log.error(
          { broker: brokerName, version: stored.version, err: err.message },
          'stored on-publish function does not compile; its messages follow the failure policy',
        ),
      );
    }
    this.pipeline.reconfigure(this.#active(), this.#pipelineOptions());
  }

  /** The pipeline when the broker's publishes must go through it, else undefined. */
  get activePipeline(): OnPublishPipeline | undefined {
    return this.pipeline.active ? this.pipeline : undefined;
  }

  get deployed(): DeployedFunction | undefined {
    return this.#function;
  }

  /** The broker row changed (PATCH): a new webhook only when its URL or timeout changed. */
  update(record: BrokerRecord): void {
    const before = this.#record;
    this.#record = record;
    if (
      before.onPublishUrl !== record.onPublishUrl ||
      before.onPublishTimeoutMs !== record.onPublishTimeoutMs
    )
      this.#webhook = this.#buildWebhook();
    this.pipeline.reconfigure(this.#active(), this.#pipelineOptions());
  }

  /** Compiles, stores and switches to a new function version. */
  async deploy(code: string, now: string): Promise<DeployedFunction> {
    const { config, store, functions } = this.#deps;
    if (functions === undefined)
      throw new ApiError('FUNCTION_INVALID', 'sandboxed functions are not available');
    if (this.#record.onPublishUrl !== null)
      throw new ApiError(
        'HOOK_CONFLICT',
        'broker has an on_publish.url webhook; clear it (PATCH on_publish.url null) before deploying a function',
      );
    if (Buffer.byteLength(code) > config.functionMaxCodeBytes)
      throw new ApiError(
        'FUNCTION_INVALID',
        `function is ${Buffer.byteLength(code)} bytes, more than ${config.functionMaxCodeBytes} (--function-max-code-bytes)`,
      );
    let hook: PublishHook;
    try {
      hook = await this.#compile(code);
    } catch (err) {
      throw new ApiError('FUNCTION_INVALID', `function refused: ${(err as Error).message}`);
    }
    // While it compiled, the broker may have been deleted or given a webhook.
    if (this.#closed) {
      hook.close();
      throw new ApiError('BROKER_NOT_FOUND', 'the broker was deleted during the deployment');
    }
    if (this.#record.onPublishUrl !== null) {
      hook.close();
      throw new ApiError('HOOK_CONFLICT', 'broker got an on_publish.url webhook during the deployment');
    }
    const sha256 = createHash('sha256').update(code).digest('hex');
    const version = store.deployFunction(this.#record.id, code, sha256, now);
    this.#function = describe(version, sha256, now, code);
    this.#functionHook = hook;
    this.pipeline.reconfigure(this.#active(), this.#pipelineOptions());
    this.#deps.log.info({ broker: this.#deps.brokerName, version, sha256 }, 'on-publish function deployed');
    return this.#function;
  }

  /** Removes the deployed function and its state; false when there was none. */
  removeFunction(): boolean {
    const removed = this.#deps.store.removeFunction(this.#record.id);
    this.#function = undefined;
    this.#functionHook = undefined;
    this.#state = undefined;
    this.pipeline.reconfigure(this.#active(), this.#pipelineOptions());
    return removed;
  }

  view(): HookView {
    const active = this.#active();
    return {
      kind: active === undefined ? 'none' : active.kind,
      on_publish: {
        url: this.#record.onPublishUrl,
        policy: this.#record.onPublishPolicy,
        timeout_ms: this.#timeoutMs(),
      },
      function: this.#function ?? null,
      ack: this.#deps.config.hookAck,
      publish_budget: {
        messages_per_second: this.#publishBudget.limits.messagesPerSecond,
        bytes_per_second: this.#publishBudget.limits.bytesPerSecond,
        burst_ms: this.#publishBudget.limits.burstMs,
      },
      metrics: this.pipeline.view(),
    };
  }

  close(): void {
    this.#closed = true;
    this.pipeline.close();
  }

  #active(): PublishHook | undefined {
    return this.#functionHook ?? this.#webhook;
  }

  #timeoutMs(): number {
    return this.#record.onPublishTimeoutMs ?? this.#deps.config.hookTimeoutMs;
  }

  #pipelineOptions(): PipelineOptions {
    const { config, log, brokerName } = this.#deps;
    return {
      brokerName,
      policy: this.#record.onPublishPolicy,
      batchSize: config.hookBatchSize,
      batchWindowMs: config.hookBatchWindowMs,
      concurrency: config.hookConcurrency,
      maxPending: config.hookMaxPending,
      // Only webhook calls merge waiting batches: a function's call has a CPU limit.
      ...(this.#active()?.kind === 'webhook' ? { mergeUpTo: config.hookBatchMax } : {}),
      log,
    };
  }

  #buildWebhook(): WebhookHook | undefined {
    const url = this.#record.onPublishUrl;
    if (url === null) return undefined;
    const { config, credentials, egress } = this.#deps;
    return new WebhookHook({
      url,
      timeoutMs: this.#timeoutMs(),
      retries: config.hookRetries,
      maxResponseBytes: config.hookMaxResponseBytes,
      maxSockets: config.hookConcurrency,
      signingKey: () => credentials.signingKey,
      onRetry: () => {
        this.pipeline.stats.retries++;
      },
      egress,
    });
  }

  #compile(code: string): Promise<PublishHook> {
    const { config, publish, log, brokerName } = this.#deps;
    return this.#deps.functions!({
      owner: String(this.#record.id),
      code,
      memoryLimitBytes: config.functionMemoryMb * 1024 * 1024,
      cpuLimitMs: config.functionCpuMs,
      stateLimitBytes: config.functionStateBytes,
      state: this.#hookState(),
      publishBudget: this.#publishBudget,
      publish: (topic, payload, options) => {
        this.pipeline.stats.published++;
        const properties: NonNullable<Message['properties']> = {};
        if (options.contentType !== undefined) properties.contentType = options.contentType;
        if (options.payloadFormatIndicator !== undefined)
          properties.payloadFormatIndicator = options.payloadFormatIndicator;
        publish(
          new Message({
            topic,
            payload,
            qos: options.qos,
            retain: options.retain,
            properties: Object.keys(properties).length > 0 ? properties : undefined,
            detached: true,
          }),
        );
      },
      log: (level, message) => log[level]({ broker: brokerName, function: this.#function?.version }, message),
    });
  }

  /** The function's state: in memory, written through to the store. */
  #hookState(): HookState {
    const { store } = this.#deps;
    const id = this.#record.id;
    const state = () => {
      this.#state ??= store.state(id);
      return this.#state;
    };
    return {
      get: (key) => state().get(key),
      set: (key, value) => {
        state().set(key, value);
        store.writeState(id, new Map([[key, value]]));
      },
      delete: (key) => {
        if (state().delete(key)) store.writeState(id, new Map([[key, undefined]]));
      },
      keys: () => state().keys(),
    };
  }
}

function describe(version: number, sha256: string, deployedOn: string, code: string): DeployedFunction {
  return { version, sha256, deployedOn, bytes: Buffer.byteLength(code) };
}

/** A hook still compiling (a stored function at start-up): calls wait for it. */
class PendingHook implements PublishHook {
  readonly kind = 'function';
  readonly #ready: Promise<PublishHook>;
  #hook: PublishHook | undefined;
  #closed = false;

  constructor(compiling: Promise<PublishHook>, onError: (err: Error) => void) {
    this.#ready = compiling.then((hook) => {
      if (this.#closed) hook.close();
      this.#hook = hook;
      return hook;
    });
    this.#ready.catch(onError);
  }

  async run(batch: HookMessage[]): Promise<unknown> {
    const hook = this.#hook ?? (await this.#ready);
    return hook.run(batch);
  }

  close(): void {
    this.#closed = true;
    this.#hook?.close();
  }
}
