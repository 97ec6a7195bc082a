/**
 * The host side of the sandbox's bridge: the functions the prelude (prelude.ts) wraps into
 * `ctx.publish`, `ctx.state` and `console`, and what they ask of the host (`SandboxHost`).
 *
 * Invariants:
 * - Arguments and answers cross as JSON texts, numbers or ArrayBuffers, never raw C strings
 *   (quickjs-emscripten would cut them at U+0000).
 * - Each host function runs as the sandbox's host work (its memory gate in host mode, QuickJS's
 *   limit lifted): what the host allocates for the guest is not charged to the guest.
 * - A malformed argument throws a TypeError inside the guest, never in the host; so does
 *   anything the SandboxHost throws (its bounds: state limit, publish budget).
 * - Every handle made here is disposed before the function that made it returns, except the
 *   answers handed to QuickJS, which owns them.
 */
import type { QuickJSContext, QuickJSHandle } from 'quickjs-emscripten';
import type { ConsoleLevel } from './effects.ts';

/** What guest code may ask of the host, through the prelude. Throwing throws inside the guest. */
export interface SandboxHost {
  log(level: ConsoleLevel, text: string): void;
  publish(
    topic: string,
    payload: string | Buffer,
    qos: number,
    retain: boolean,
    contentType: string | undefined,
  ): void;
  stateGet(key: string): string | undefined;
  stateSet(key: string, value: string): void;
  stateDelete(key: string): boolean;
  stateKeys(): string[];
}

/**
 * Defines on `target` the host functions the prelude wraps; each runs as `hostWork` (the
 * sandbox's host mode) and takes and returns JSON texts, numbers or bytes.
 */
export function installHostFunctions(
  context: QuickJSContext,
  target: QuickJSHandle,
  host: SandboxHost,
  hostWork: <T>(work: () => T) => T,
): void {
  const json = (handle: QuickJSHandle | undefined): unknown => {
    if (handle === undefined || context.typeof(handle) !== 'string') throw new TypeError('expected a string');
    return JSON.parse(context.getString(handle));
  };
  const text = (handle: QuickJSHandle | undefined): string => {
    const value = json(handle);
    if (typeof value !== 'string') throw new TypeError('expected a string');
    return value;
  };
  const define = (name: string, fn: (...args: QuickJSHandle[]) => QuickJSHandle | undefined): void => {
    const handle = context.newFunction(name, (...args) => hostWork(() => fn(...args)));
    context.setProp(target, name, handle);
    handle.dispose();
  };
  define('log', (level, line) => {
    const name = text(level);
    host.log(name === 'warn' || name === 'error' ? name : 'info', text(line));
    return undefined;
  });
  define('publish', (head, bytes) => {
    const fields = json(head);
    if (!Array.isArray(fields) || fields.length !== 5) throw new TypeError('ctx.publish: bad arguments');
    const [topic, payload, qos, retain, contentType] = fields as unknown[];
    let body: string | Buffer;
    if (typeof payload === 'string') body = payload;
    else {
      const view = context.getArrayBuffer(bytes!);
      try {
        body = Buffer.from(view.value);
      } finally {
        view.dispose();
      }
    }
    if (typeof topic !== 'string') throw new TypeError('ctx.publish: the topic must be a string');
    if (typeof retain !== 'boolean') throw new TypeError('ctx.publish: retain must be a boolean');
    if (contentType !== null && typeof contentType !== 'string') {
      throw new TypeError('ctx.publish: contentType must be a string');
    }
    host.publish(topic, body, Number(qos), retain, contentType ?? undefined);
    return undefined;
  });
  define('stateGet', (key) => {
    const value = host.stateGet(text(key));
    return value === undefined ? undefined : context.newString(value);
  });
  define('stateSet', (key, value) => {
    if (value === undefined || context.typeof(value) !== 'string') throw new TypeError('expected a string');
    host.stateSet(text(key), context.getString(value));
    return undefined;
  });
  define('stateDelete', (key) => context.newNumber(host.stateDelete(text(key)) ? 1 : 0));
  define('stateKeys', () => context.newString(JSON.stringify(host.stateKeys())));
}
