/**
 * MQTT UTF-8 Encoded String checks [MQTT-1.5.4-1] (well-formed UTF-8, no surrogates) and
 * [MQTT-1.5.4-2] (no U+0000). ASCII-only strings, the common case for topics and client ids,
 * are checked by a byte loop; anything else goes through the strict validator of node:buffer.
 */
import { isUtf8 } from 'node:buffer';

/** True when bytes [start, end) of buf are a valid MQTT UTF-8 string. */
export function isValidMqttUtf8(buf: Buffer, start: number, end: number): boolean {
  let ascii = true;
  for (let i = start; i < end; i++) {
    const b = buf[i]!;
    if (b === 0) return false; // [MQTT-1.5.4-2]
    if (b >= 0x80) ascii = false;
  }
  return ascii || isUtf8(buf.subarray(start, end)); // [MQTT-1.5.4-1]
}

/** True when a JS string is acceptable as an MQTT string: no U+0000 and no lone surrogates. */
export function isValidMqttString(s: string): boolean {
  return !s.includes('\u0000') && s.isWellFormed();
}
