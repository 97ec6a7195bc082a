/**
 * Overload of the process: resident memory against a limit, the V8 heap against its own limit,
 * and (when asked) event-loop lag. A timer every `tickMs` reads them; `overloaded` is the
 * verdict the CONNECT path reads (a field, nothing computed per connection) and that others may
 * read to shed work (the slow-consumer shedding reads it too).
 *
 * - Enter when RSS is above `maxMemoryBytes`, the heap above 90 % of V8's limit (past it V8
 *   dies with an out-of-memory error, whatever RSS says), or one tick's lateness is above
 *   `maxLagMs` (0: lag does not count).
 * - Leave when all are back under, memory with hysteresis (RSS under 90 % of the limit, heap
 *   under 80 % of V8's): a process hovering at its limit must not flap at every tick.
 * - Each transition is logged once (warn entering, info leaving) and entries are counted.
 * - `onVerdict` hears every judgement (each tick, each limit change), so that what sheds load
 *   above this floor (the server wires broker/input-shedding.ts: pausing the readers of the
 *   heaviest brokers) can follow the verdict and the figures between ticks.
 *
 * The default limit (`defaultMemoryLimit`) is a fraction of what the process may have: the
 * cgroup v2 `memory.max` when one is set (a container's limit, which the OOM killer enforces),
 * else the machine's memory.
 */
import { readFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { getHeapStatistics } from 'node:v8';
import type { Logger } from 'pino';

/** What the watch reads of the process's memory; the process's own unless a test injects one. */
export interface MemoryProbe {
  /** Resident set size, bytes. */
  rss(): number;
  /** V8 heap in use and the most V8 will grow it to, bytes. */
  heap(): { used: number; limit: number };
}

export const processMemory: MemoryProbe = {
  rss: () => process.memoryUsage.rss(),
  heap: () => {
    const h = getHeapStatistics();
    return { used: h.used_heap_size, limit: h.heap_size_limit };
  },
};

/** Share of the available memory the default limit takes: room for the rest of the container. */
export const DEFAULT_MEMORY_SHARE = 0.8;
const LEAVE_RSS_SHARE = 0.9;
const ENTER_HEAP_SHARE = 0.9;
const LEAVE_HEAP_SHARE = 0.8;
const MIB = 1024 * 1024;

/**
 * `DEFAULT_MEMORY_SHARE` of the cgroup v2 limit in `cgroupFile` (`memory.max`: a byte count, or
 * `max` for none), else of the machine's memory.
 */
export function defaultMemoryLimit(cgroupFile = '/sys/fs/cgroup/memory.max'): number {
  let available = totalmem();
  try {
    const text = readFileSync(cgroupFile, 'utf8').trim();
    if (/^\d+$/.test(text)) available = Math.min(available, Number(text));
  } catch {
    // no cgroup v2 file (not Linux, cgroup v1, not mounted): the machine's memory
  }
  return Math.floor(available * DEFAULT_MEMORY_SHARE);
}

export interface OverloadOptions {
  maxMemoryBytes: number;
  /** 0: lag does not count. */
  maxLagMs: number;
  logger: Logger;
  probe?: MemoryProbe;
  tickMs?: number;
  /** Told the verdict after every judgement (`check`), overloaded or not. */
  onVerdict?: (overloaded: boolean) => void;
}

export class OverloadWatch {
  readonly maxLagMs: number;
  readonly tickMs: number;
  /** True while the process refuses new connections. */
  overloaded = false;
  /** Why, while overloaded: `memory`, `heap` or `event_loop_lag`. */
  reason: string | undefined;
  /** Times the process became overloaded. */
  transitions = 0;
  #maxMemoryBytes: number;
  readonly #probe: MemoryProbe;
  readonly #logger: Logger;
  #timer: NodeJS.Timeout | undefined;
  #lastTick = 0;
  #lagMs = 0;
  readonly #onVerdict: ((overloaded: boolean) => void) | undefined;

  constructor(options: OverloadOptions) {
    this.#maxMemoryBytes = options.maxMemoryBytes;
    this.maxLagMs = options.maxLagMs;
    this.#logger = options.logger;
    this.#probe = options.probe ?? processMemory;
    this.tickMs = options.tickMs ?? 250;
    this.#onVerdict = options.onVerdict;
  }

  get maxMemoryBytes(): number {
    return this.#maxMemoryBytes;
  }

  /** Changes the memory limit at run time (embedding, operators' tools) and judges at once. */
  set maxMemoryBytes(bytes: number) {
    this.#maxMemoryBytes = bytes;
    this.check();
  }

  start(): void {
    if (this.#timer !== undefined) return;
    this.#lastTick = performance.now();
    this.check();
    this.#timer = setInterval(this.#tick, this.tickMs).unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Reads the figures and enters or leaves overload; returns the verdict. */
  check(): boolean {
    const rss = this.#probe.rss();
    const heap = this.#probe.heap();
    const lagOver = this.maxLagMs > 0 && this.#lagMs > this.maxLagMs;
    const reason = this.overloaded
      ? this.#stillOver(rss, heap, lagOver)
      : rss > this.#maxMemoryBytes
        ? 'memory'
        : heap.used > heap.limit * ENTER_HEAP_SHARE
          ? 'heap'
          : lagOver
            ? 'event_loop_lag'
            : undefined;
    const figures = {
      rssMiB: Math.round(rss / MIB),
      maxMemoryMiB: Math.round(this.#maxMemoryBytes / MIB),
      heapMiB: Math.round(heap.used / MIB),
      lagMs: Math.round(this.#lagMs),
    };
    if (reason !== undefined && !this.overloaded) {
      this.transitions++;
      this.#logger.warn({ reason, ...figures }, 'process overloaded: refusing new connections');
    } else if (reason === undefined && this.overloaded) {
      this.#logger.info({ was: this.reason, ...figures }, 'process recovered: accepting new connections');
    }
    this.overloaded = reason !== undefined;
    this.reason = reason;
    this.#onVerdict?.(this.overloaded);
    return this.overloaded;
  }

  /** While overloaded: the reason it still is, judged against the lower leaving thresholds. */
  #stillOver(rss: number, heap: { used: number; limit: number }, lagOver: boolean): string | undefined {
    if (rss > this.#maxMemoryBytes * LEAVE_RSS_SHARE) return 'memory';
    if (heap.used > heap.limit * LEAVE_HEAP_SHARE) return 'heap';
    return lagOver ? 'event_loop_lag' : undefined;
  }

  #tick = (): void => {
    const now = performance.now();
    this.#lagMs = Math.max(0, now - this.#lastTick - this.tickMs);
    this.#lastTick = now;
    this.check();
  };
}
