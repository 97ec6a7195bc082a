/**
 * The messages between the worker pool (worker-pool.ts, on the event loop) and a sandbox worker
 * thread (sandbox-worker.ts), and how the typed failures of errors.ts cross between them.
 *
 * - A hook is named by a pool-wide number (`id`), a broker by its `owner` key (the broker's
 *   record id): the state and derived-publish budget a worker keeps are the owner's, shared by
 *   the versions of its function that the worker holds.
 * - A batch crosses as the envelope of envelope.ts: a JSON text (copied: cloning a one-byte
 *   string costs what encoding it to bytes would) and the batch's binary payloads in one
 *   ArrayBuffer, transferred, not copied.
 * - A call's effects come back with its answer, in the order they must be applied: state writes,
 *   then the derived publishes; the budget it was charged, for the pool's copy of the budget.
 *   Console lines come back at once, as they are written (before their call's answer).
 */
import type { DerivedPublishOptions } from './effects.ts';
import { FunctionDeployError, FunctionLimitError, FunctionRuntimeError } from './errors.ts';

export interface BudgetSeed {
  limits: { messagesPerSecond: number; bytesPerSecond: number; burstMs: number };
  /** What the broker's budget holds now (the worker's copy starts from it). */
  level: { messages: number; bytes: number };
}

export type ToWorker =
  | {
      t: 'deploy';
      id: number;
      owner: string;
      code: string;
      memoryLimitBytes: number;
      cpuLimitMs: number;
      stateLimitBytes: number;
      /** The broker's state, used when this worker holds none of the owner's yet. */
      state: [string, string][];
      budget: BudgetSeed;
    }
  | { t: 'run'; id: number; call: number; envelope: string; bytes: Uint8Array | undefined }
  | { t: 'close'; id: number };

export interface CallEffectsOut {
  /** key → new JSON value, null for a delete, in the order they were made. */
  writes: [string, string | null][];
  publishes: { topic: string; payload: Uint8Array; options: DerivedPublishOptions }[];
  /** Messages and bytes charged to the budget. */
  charged: [number, number];
}

export type FromWorker =
  | { t: 'deployed'; id: number }
  | { t: 'deployFailed'; id: number; error: SerializedError }
  | { t: 'result'; id: number; call: number; answer: unknown; effects: CallEffectsOut }
  | { t: 'failed'; id: number; call: number; error: SerializedError }
  | { t: 'log'; id: number; level: 'info' | 'warn' | 'error'; message: string }
  | { t: 'refused'; id: number; message: string; first: boolean };

export interface SerializedError {
  name: string;
  message: string;
  limit?: 'cpu' | 'memory';
  sandboxStack?: string;
  line?: number;
  column?: number;
}

export function serializeError(error: unknown): SerializedError {
  if (error instanceof FunctionLimitError)
    return { name: error.name, message: error.message, limit: error.limit };
  if (error instanceof FunctionRuntimeError)
    return { name: error.name, message: error.message, sandboxStack: error.sandboxStack };
  if (error instanceof FunctionDeployError) {
    const out: SerializedError = { name: error.name, message: error.message };
    if (error.line !== undefined) out.line = error.line;
    if (error.column !== undefined) out.column = error.column;
    return out;
  }
  if (error instanceof Error) return { name: error.name, message: error.message };
  return { name: 'Error', message: String(error) };
}

/** The error `serializeError` described, as the same class with the same fields. */
export function deserializeError(error: SerializedError): Error {
  switch (error.name) {
    case 'FunctionLimitError':
      return new FunctionLimitError(error.limit ?? 'cpu', error.message);
    case 'FunctionRuntimeError':
      return new FunctionRuntimeError(error.message, error.sandboxStack ?? '');
    case 'FunctionDeployError':
      return new FunctionDeployError(
        error.message,
        error.line === undefined ? undefined : { line: error.line, column: error.column },
      );
    default: {
      const out = new Error(error.message);
      out.name = error.name;
      return out;
    }
  }
}
