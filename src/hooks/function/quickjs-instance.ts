/**
 * One QuickJS WebAssembly instance per sandboxed function, with its own capped linear memory.
 *
 * Why not one shared instance: QuickJS's own memory limit is not a byte limit in this build.
 * On Emscripten `malloc_usable_size` is unavailable, so the runtime checks each request against
 * the limit but accounts 8 bytes per allocation (quickjs-emscripten issues #271 and #255): a
 * loop of 64 KiB strings grows the shared memory to 2 GiB, starving every other function and
 * the host. So the WebAssembly code is compiled once per process and shared, but every function
 * gets an instance of its own whose memory cannot grow past its limit; QuickJS then meets a
 * failed malloc and throws its ordinary "out of memory".
 *
 * The gate (MemoryGate) decides each growth of the linear memory:
 * - while guest code runs (`guest` true) the memory may grow up to `guestCapBytes`
 *   (memoryLimitBytes rounded up to 64 KiB pages): that is the function's memory limit, covering
 *   QuickJS's data, stack and heap;
 * - host-side work (creating a call's inputs, copying its answer out, host functions) may grow
 *   it further into a reserve, up to `hardCapBytes`, because quickjs-emscripten writes into what
 *   `malloc` returns without checking for NULL. Host inputs are bounded (a batch is refused above
 *   half the limit), so the reserve covers them even when the guest has filled its share.
 * - `denied` records a refused growth, `reserveUsed` a growth into the reserve. Either makes the
 *   instance unfit for further calls: its owner drops it and instantiates a fresh one, so memory a
 *   function grabbed is returned and a guest can never keep the host's reserve.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { newQuickJSWASMModule, newVariant, type QuickJSWASMModule, RELEASE_SYNC } from 'quickjs-emscripten';

/** The parts of the WebAssembly global used here (the project's TypeScript libs omit it). */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(deltaPages: number): number;
}
type WasmModule = object;
const wasm = (
  globalThis as unknown as {
    WebAssembly: {
      compile(bytes: Uint8Array): Promise<WasmModule>;
      Memory: new (descriptor: { initial: number; maximum: number }) => WasmMemory;
    };
  }
).WebAssembly;

const PAGE_BYTES = 65_536;
/** The release-sync build imports a memory of at least 256 pages: no instance is smaller. */
export const BASE_MEMORY_BYTES = 256 * PAGE_BYTES;
/** Host working room beyond the guest's cap, on top of the largest accepted batch. */
const HOST_RESERVE_BYTES = 4 * 1024 * 1024;

export class MemoryGate {
  readonly guestCapBytes: number;
  readonly hardCapBytes: number;
  /** True while guest code runs (set around every call into QuickJS that runs user code). */
  guest = false;
  denied = false;
  reserveUsed = false;

  constructor(memoryLimitBytes: number) {
    this.guestCapBytes = Math.max(BASE_MEMORY_BYTES, Math.ceil(memoryLimitBytes / PAGE_BYTES) * PAGE_BYTES);
    const reserve = memoryLimitBytes + HOST_RESERVE_BYTES;
    this.hardCapBytes = this.guestCapBytes + Math.ceil(reserve / PAGE_BYTES) * PAGE_BYTES;
  }

  /** Whether the memory may grow from `current` to `next` bytes (records the outcome). */
  allow(current: number, next: number): boolean {
    if (next > (this.guest ? this.guestCapBytes : this.hardCapBytes)) {
      this.denied = true;
      return false;
    }
    if (next > this.guestCapBytes && current <= this.guestCapBytes) this.reserveUsed = true;
    return true;
  }

  /** Runs host-side work that may allocate, outside the guest's cap. */
  asHost<T>(work: () => T): T {
    const wasGuest = this.guest;
    this.guest = false;
    try {
      return work();
    } finally {
      this.guest = wasGuest;
    }
  }

  /** Runs a call into QuickJS that executes guest code, within the guest's cap. */
  asGuest<T>(work: () => T): T {
    const wasGuest = this.guest;
    this.guest = true;
    try {
      return work();
    } finally {
      this.guest = wasGuest;
    }
  }
}

export interface QuickJSInstance {
  module: QuickJSWASMModule;
  memory: WasmMemory;
  gate: MemoryGate;
}

let compiled: Promise<WasmModule> | undefined;

/** The release-sync QuickJS WebAssembly code, compiled once per process. */
function compiledQuickJS(): Promise<WasmModule> {
  if (compiled === undefined) {
    compiled = (async () => {
      // Resolved from quickjs-emscripten's own location: the variant is its dependency.
      const require = createRequire(import.meta.resolve('quickjs-emscripten'));
      const path = require.resolve('@jitl/quickjs-wasmfile-release-sync/wasm');
      return wasm.compile(await readFile(path));
    })();
    compiled.catch(() => {
      compiled = undefined; // a failed load may be retried by the next deploy
    });
  }
  return compiled;
}

/** A fresh instance whose memory the gate caps (about a millisecond once compiled). */
export async function newQuickJSInstance(memoryLimitBytes: number): Promise<QuickJSInstance> {
  const gate = new MemoryGate(memoryLimitBytes);
  const memory = new wasm.Memory({
    initial: BASE_MEMORY_BYTES / PAGE_BYTES,
    maximum: gate.hardCapBytes / PAGE_BYTES,
  });
  const grow = memory.grow.bind(memory);
  // Emscripten's heap resize calls memory.grow and treats a throw as "no more memory" (malloc
  // returns NULL, QuickJS throws "out of memory"); returning without growing would corrupt it.
  memory.grow = (deltaPages: number): number => {
    const current = memory.buffer.byteLength;
    if (!gate.allow(current, current + deltaPages * PAGE_BYTES)) {
      throw new RangeError('sandbox memory limit reached');
    }
    return grow(deltaPages);
  };
  const module = await newQuickJSWASMModule(
    newVariant(RELEASE_SYNC, { wasmModule: await compiledQuickJS(), wasmMemory: memory }),
  );
  return { module, memory, gate };
}
