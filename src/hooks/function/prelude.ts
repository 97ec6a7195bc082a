/**
 * The JavaScript that runs inside every sandbox before the user's module: it is the only code
 * that talks to the host functions, and it shapes what the user's `onPublish` sees.
 *
 * Evaluated as a global script, the source is one function expression. The host calls it once
 * with an object of raw host functions and gets back `{ makeCall, describe }`; the host functions
 * stay in this closure only (nothing is left on globalThis), so user code can reach the host
 * solely through `ctx` and `console`.
 *
 * Invariants:
 * - Builtins the wrapper relies on are captured before user code runs; a module that patches
 *   globals only breaks itself, and the host validates everything that comes out anyway.
 * - In: `call(envelopeText, bytes?)` in the format of envelope.ts: message rows, and
 *   `[row index, offset, length]` triples into `bytes` (one ArrayBuffer holding every binary
 *   payload of the batch). Binary payloads become independent Uint8Arrays.
 * - Out: `call` returns (or resolves to) either the JSON text `{ r: result }`, or, when returned
 *   messages carry byte payloads, `[JSON text of { r, b: layout }, ArrayBuffer]` where each
 *   triple names a top-level entry of `r` whose payload the host fills in (base64). Object
 *   entries of an array answer keep only what readVerdict reads (mid, topic, payload, encoding):
 *   serializing the rest would cost time and change nothing.
 * - Globals added: `console` (log/info/debug → info, warn, error), `TextEncoder` and
 *   `TextDecoder` (UTF-8 only, WHATWG replacement semantics). Nothing that reaches I/O or time.
 *
 * - Strings go to the host as JSON texts (the host side reads C strings, which end at U+0000).
 *
 * The source is plain ES2020 in String.raw: backslashes stay JavaScript escapes, no backticks
 * inside, and its one substitution is MAX_LINE.
 */

/** Longest console line handed to the host (the host truncates again; this avoids copying megabytes). */
export const PRELUDE_MAX_LINE = 8192;

export const PRELUDE_SOURCE = String.raw`(function (host) {
  'use strict';
  const hostLog = host.log;
  const hostPublish = host.publish;
  const hostGet = host.stateGet;
  const hostSet = host.stateSet;
  const hostDelete = host.stateDelete;
  const hostKeys = host.stateKeys;
  const parse = JSON.parse;
  const stringify = JSON.stringify;
  const isArray = Array.isArray;
  const isView = ArrayBuffer.isView;
  const freeze = Object.freeze;
  const defineProperty = Object.defineProperty;
  const apply = Reflect.apply;
  const fromCharCode = String.fromCharCode;
  const promiseResolve = Promise.resolve.bind(Promise);
  const promiseThen = Promise.prototype.then;
  const U8 = Uint8Array;
  const AB = ArrayBuffer;
  const abSlice = ArrayBuffer.prototype.slice;
  const u8Slice = Uint8Array.prototype.slice;
  const u8Set = Uint8Array.prototype.set;
  const ErrorCtor = Error;
  const MAX_LINE = ${PRELUDE_MAX_LINE};

  function bytesOf(value) {
    if (value instanceof AB) return new U8(value);
    if (isView(value)) return new U8(value.buffer, value.byteOffset, value.byteLength);
    return undefined;
  }

  function show(value) {
    try {
      if (typeof value === 'string') return value;
      if (value instanceof ErrorCtor) return value.stack ? String(value) + '\n' + value.stack : String(value);
      const text = stringify(value);
      return text === undefined ? String(value) : text;
    } catch (e) {
      try {
        return String(value);
      } catch (e2) {
        return '[unprintable]';
      }
    }
  }

  function line(args) {
    let text = '';
    for (let i = 0; i < args.length && text.length <= MAX_LINE; i++) {
      if (i > 0) text += ' ';
      text += show(args[i]);
    }
    return text.length > MAX_LINE + 1 ? text.slice(0, MAX_LINE + 1) : text;
  }

  function logger(level) {
    return function () {
      hostLog(stringify(level), stringify(line(arguments)));
    };
  }

  defineProperty(globalThis, 'console', {
    value: freeze({
      log: logger('info'),
      info: logger('info'),
      debug: logger('info'),
      warn: logger('warn'),
      error: logger('error'),
    }),
    writable: true,
    configurable: true,
    enumerable: false,
  });

  class TextEncoder {
    get encoding() {
      return 'utf-8';
    }
    encode(input) {
      const s = input === undefined ? '' : String(input);
      const out = new U8(s.length * 3);
      let n = 0;
      for (let i = 0; i < s.length; i++) {
        let c = s.charCodeAt(i);
        if (c < 0x80) {
          out[n++] = c;
          continue;
        }
        if (c < 0x800) {
          out[n++] = 0xc0 | (c >> 6);
          out[n++] = 0x80 | (c & 0x3f);
          continue;
        }
        if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
          const d = s.charCodeAt(i + 1);
          if (d >= 0xdc00 && d <= 0xdfff) {
            const cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
            i++;
            out[n++] = 0xf0 | (cp >> 18);
            out[n++] = 0x80 | ((cp >> 12) & 0x3f);
            out[n++] = 0x80 | ((cp >> 6) & 0x3f);
            out[n++] = 0x80 | (cp & 0x3f);
            continue;
          }
        }
        if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd;
        out[n++] = 0xe0 | (c >> 12);
        out[n++] = 0x80 | ((c >> 6) & 0x3f);
        out[n++] = 0x80 | (c & 0x3f);
      }
      return apply(u8Slice, out, [0, n]);
    }
  }

  class TextDecoder {
    constructor(label, options) {
      const name = label === undefined ? 'utf-8' : String(label).trim().toLowerCase();
      if (name !== 'utf-8' && name !== 'utf8' && name !== 'unicode-1-1-utf-8') {
        throw new RangeError('TextDecoder: only utf-8 is supported, not ' + name);
      }
      this._fatal = !!(options && options.fatal);
      this._ignoreBOM = !!(options && options.ignoreBOM);
    }
    get encoding() {
      return 'utf-8';
    }
    get fatal() {
      return this._fatal;
    }
    get ignoreBOM() {
      return this._ignoreBOM;
    }
    decode(input) {
      const bytes = input === undefined ? new U8(0) : bytesOf(input);
      if (bytes === undefined) throw new TypeError('TextDecoder.decode: expected an ArrayBuffer or a typed array');
      const fatal = this._fatal;
      let out = '';
      const units = [];
      let codePoint = 0;
      let needed = 0;
      let seen = 0;
      let lower = 0x80;
      let upper = 0xbf;
      let first = !this._ignoreBOM;
      function emit(cp) {
        if (first) {
          first = false;
          if (cp === 0xfeff) return;
        }
        if (cp > 0xffff) {
          cp -= 0x10000;
          units.push(0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
        } else {
          units.push(cp);
        }
        if (units.length >= 4096) {
          out += apply(fromCharCode, null, units);
          units.length = 0;
        }
      }
      function bad() {
        if (fatal) throw new TypeError('TextDecoder.decode: the data is not valid utf-8');
        emit(0xfffd);
      }
      for (let i = 0; i < bytes.length; i++) {
        const b = bytes[i];
        if (needed === 0) {
          if (b <= 0x7f) emit(b);
          else if (b >= 0xc2 && b <= 0xdf) {
            needed = 1;
            codePoint = b & 0x1f;
          } else if (b >= 0xe0 && b <= 0xef) {
            if (b === 0xe0) lower = 0xa0;
            if (b === 0xed) upper = 0x9f;
            needed = 2;
            codePoint = b & 0xf;
          } else if (b >= 0xf0 && b <= 0xf4) {
            if (b === 0xf0) lower = 0x90;
            if (b === 0xf4) upper = 0x8f;
            needed = 3;
            codePoint = b & 0x7;
          } else bad();
          continue;
        }
        if (b < lower || b > upper) {
          codePoint = 0;
          needed = 0;
          seen = 0;
          lower = 0x80;
          upper = 0xbf;
          bad();
          i--;
          continue;
        }
        lower = 0x80;
        upper = 0xbf;
        codePoint = (codePoint << 6) | (b & 0x3f);
        if (++seen === needed) {
          emit(codePoint);
          codePoint = 0;
          needed = 0;
          seen = 0;
        }
      }
      if (needed !== 0) bad();
      if (units.length > 0) out += apply(fromCharCode, null, units);
      return out;
    }
  }

  for (const [name, value] of [['TextEncoder', TextEncoder], ['TextDecoder', TextDecoder]]) {
    defineProperty(globalThis, name, { value: value, writable: true, configurable: true, enumerable: false });
  }

  function stateKey(key, method) {
    if (typeof key !== 'string') throw new TypeError('ctx.state.' + method + ': the key must be a string');
    return key;
  }

  const state = freeze({
    get(key) {
      const text = hostGet(stringify(stateKey(key, 'get')));
      return text === undefined ? undefined : parse(text);
    },
    set(key, value) {
      stateKey(key, 'set');
      const text = stringify(value);
      if (typeof text !== 'string') {
        throw new TypeError('ctx.state.set: the value must be JSON-serializable (not undefined, a function or a symbol)');
      }
      hostSet(stringify(key), text);
    },
    delete(key) {
      return hostDelete(stringify(stateKey(key, 'delete'))) === 1;
    },
    keys() {
      return parse(hostKeys());
    },
  });

  function publish(topic, payload, options) {
    if (typeof topic !== 'string') throw new TypeError('ctx.publish: the topic must be a string');
    let body;
    if (typeof payload !== 'string') {
      const bytes = bytesOf(payload);
      if (bytes === undefined) throw new TypeError('ctx.publish: the payload must be a string or a Uint8Array');
      body = apply(abSlice, bytes.buffer, [bytes.byteOffset, bytes.byteOffset + bytes.byteLength]);
    }
    let qos = 0;
    let retain = false;
    let contentType;
    if (options !== undefined && options !== null) {
      if (typeof options !== 'object') throw new TypeError('ctx.publish: options must be an object');
      if (options.qos !== undefined) qos = options.qos;
      if (options.retain !== undefined) retain = options.retain;
      if (options.contentType !== undefined && options.contentType !== null) contentType = options.contentType;
    }
    if (qos !== 0 && qos !== 1 && qos !== 2) throw new RangeError('ctx.publish: qos must be 0, 1 or 2');
    if (typeof retain !== 'boolean') throw new TypeError('ctx.publish: retain must be a boolean');
    if (contentType !== undefined && typeof contentType !== 'string') {
      throw new TypeError('ctx.publish: contentType must be a string');
    }
    const text = typeof payload === 'string' ? payload : null;
    hostPublish(stringify([topic, text, qos, retain, contentType === undefined ? null : contentType]), body);
  }

  function answer(result) {
    if (!isArray(result)) return stringify({ r: result });
    const out = [];
    let found = null;
    let total = 0;
    for (let i = 0; i < result.length; i++) {
      const entry = result[i];
      if (entry === null || typeof entry !== 'object') {
        out[i] = entry;
        continue;
      }
      const payload = entry.payload;
      const bytes = bytesOf(payload);
      const slim = { mid: entry.mid, topic: entry.topic, payload: bytes === undefined ? payload : '' };
      if (bytes === undefined) {
        if (entry.encoding !== undefined) slim.encoding = entry.encoding;
      } else {
        if (found === null) found = [];
        found[found.length] = i;
        found[found.length] = bytes;
        total += bytes.byteLength;
      }
      out[i] = slim;
    }
    if (found === null) return stringify({ r: out });
    const all = new U8(total);
    const layout = [];
    let offset = 0;
    for (let k = 0; k < found.length; k += 2) {
      const bytes = found[k + 1];
      apply(u8Set, all, [bytes, offset]);
      layout[layout.length] = found[k];
      layout[layout.length] = offset;
      layout[layout.length] = bytes.byteLength;
      offset += bytes.byteLength;
    }
    return [stringify({ r: out, b: layout }), all.buffer];
  }

  function makeCall(onPublish) {
    return function call(envelopeText, bytes) {
      const envelope = parse(envelopeText);
      const broker = envelope.broker;
      const rows = envelope.rows;
      const messages = [];
      for (let i = 0; i < rows.length; i++) {
        const row = rows[i];
        const message = {
          mid: row[0],
          broker: row[8] === 0 ? broker : row[8],
          topic: row[1],
          clientId: row[2],
          receivedAt: row[3],
          contentType: row[4],
          payloadFormatIndicator: row[5],
          payload: row[6],
        };
        if (row[7] !== null) message.jti = row[7];
        messages[i] = message;
      }
      if (bytes !== undefined) {
        const all = new U8(bytes);
        const layout = envelope.b;
        for (let k = 0; k < layout.length; k += 3) {
          messages[layout[k]].payload = apply(u8Slice, all, [layout[k + 1], layout[k + 1] + layout[k + 2]]);
        }
      }
      const ctx = freeze({ broker: broker, publish: publish, state: state });
      const result = onPublish(messages, ctx);
      if (result !== null && (typeof result === 'object' || typeof result === 'function') && typeof result.then === 'function') {
        return apply(promiseThen, promiseResolve(result), [answer]);
      }
      return answer(result);
    };
  }

  function describe(error) {
    let name = '';
    let message = '';
    let stack = '';
    try {
      if (error instanceof ErrorCtor) {
        try {
          name = String(error.name);
        } catch (e) {}
        try {
          message = String(error.message);
        } catch (e) {}
        try {
          stack = typeof error.stack === 'string' ? error.stack : '';
        } catch (e) {}
      } else {
        message = show(error);
      }
    } catch (e) {}
    return stringify([name, message.length > MAX_LINE ? message.slice(0, MAX_LINE) : message, stack.slice(0, MAX_LINE)]);
  }

  return { makeCall: makeCall, describe: describe };
})`;
