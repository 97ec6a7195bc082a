/**
 * Test harness for sandboxed functions: deploys a module with an in-memory state, collects what
 * it publishes and logs, and builds batches in the shape the hook pipeline sends.
 */
import assert from 'node:assert/strict';
import { FunctionHook, type FunctionHookOptions, type HookState } from '../../src/hooks/function/index.ts';
import { type HookMessage, readVerdict } from '../../src/hooks/index.ts';
import { PublishBudget } from '../../src/hooks/publish-budget.ts';

export class MapState implements HookState {
  readonly map = new Map<string, string>();
  get(key: string): string | undefined {
    return this.map.get(key);
  }
  set(key: string, value: string): void {
    this.map.set(key, value);
  }
  delete(key: string): void {
    this.map.delete(key);
  }
  keys(): Iterable<string> {
    return this.map.keys();
  }
}

export interface Published {
  topic: string;
  payload: Buffer;
  options: { qos: 0 | 1 | 2; retain: boolean; contentType?: string; payloadFormatIndicator?: 0 | 1 };
}

export interface Harness {
  hook: FunctionHook;
  state: MapState;
  published: Published[];
  logs: Array<[string, string]>;
}

export const MiB = 1024 * 1024;

export async function deploy(code: string, overrides: Partial<FunctionHookOptions> = {}): Promise<Harness> {
  const state = (overrides.state as MapState | undefined) ?? new MapState();
  const published: Published[] = [];
  const logs: Array<[string, string]> = [];
  const hook = await FunctionHook.create({
    code,
    memoryLimitBytes: 32 * MiB,
    cpuLimitMs: 200,
    stateLimitBytes: 64 * 1024,
    state,
    publish: (topic, payload, options) => published.push({ topic, payload, options }),
    log: (level, message) => logs.push([level, message]),
    ...overrides,
    publishBudget: overrides.publishBudget ?? roomyBudget(),
  });
  return { hook, state, published, logs };
}

/** A budget no test of the per-call limits reaches (each deploy gets its own). */
function roomyBudget(): PublishBudget {
  return new PublishBudget(
    { messagesPerSecond: 1_000_000, bytesPerSecond: 1024 * MiB, burstMs: 1000 },
    () => undefined,
  );
}

/** A text message (Payload Format Indicator 1). */
export function text(mid: number, topic: string, payload: string): HookMessage {
  return {
    mid,
    broker: 'sensors.acme',
    topic,
    clientId: 'client-1',
    receivedAt: 1_700_000_000,
    contentType: null,
    payloadFormatIndicator: 1,
    payload,
  };
}

/** A binary message, as toHookMessage makes it (base64 + encoding). */
export function binary(mid: number, topic: string, payload: Buffer): HookMessage {
  return {
    mid,
    broker: 'sensors.acme',
    topic,
    clientId: 'client-1',
    receivedAt: 1_700_000_000,
    contentType: null,
    payloadFormatIndicator: 0,
    payload: payload.toString('base64'),
    encoding: 'base64',
  };
}

export function forwarded(batch: HookMessage[], answer: unknown): Map<number, string> {
  const verdict = readVerdict(batch, answer);
  assert.equal(verdict.invalid, 0);
  return new Map([...verdict.forward].map(([mid, payload]) => [mid, payload.toString('utf8')]));
}

export const PASS_THROUGH = 'export function onPublish(messages) { return messages; }';
