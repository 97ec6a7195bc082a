/**
 * Payloads as the console shows them: text, pretty-printed JSON, hex or base64, and an "auto"
 * view that picks JSON when the bytes parse as JSON, text when they are valid UTF-8, and hex
 * for anything else (binary). Always returns a string: the caller puts it in as text.
 */

const decoder = new TextDecoder();
const strict = new TextDecoder('utf-8', { fatal: true });

/** The bytes as UTF-8 text (invalid sequences as U+FFFD). */
export function text(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

export function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(' ');
}

/** Base64 text → bytes. */
export function fromBase64(base64: string): Uint8Array {
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}

export type PayloadView = 'auto' | 'text' | 'json' | 'hex' | 'base64';

/** The payload as the user chose to view it. */
export function formatPayload(bytes: Uint8Array, view: PayloadView | string): string {
  switch (view) {
    case 'json':
      try {
        return JSON.stringify(JSON.parse(text(bytes)), null, 2);
      } catch {
        return `(not JSON) ${text(bytes)}`;
      }
    case 'hex':
      return hex(bytes);
    case 'base64':
      return btoa(Array.from(bytes, (b) => String.fromCharCode(b)).join(''));
    case 'auto': {
      let decoded: string;
      try {
        decoded = strict.decode(bytes);
      } catch {
        return hex(bytes);
      }
      try {
        const value = JSON.parse(decoded);
        if (value !== null && typeof value === 'object') return JSON.stringify(value, null, 2);
      } catch {}
      return decoded;
    }
    default:
      return text(bytes);
  }
}
