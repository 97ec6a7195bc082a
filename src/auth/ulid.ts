/**
 * ULIDs (https://github.com/ulid/spec): 48 bits of milliseconds then 80 random bits, as 26
 * Crockford base32 characters, so ids sort by creation time. Used for generated client ids and
 * token ids (`jti`), as Cloudflare's were.
 */
import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

export function ulid(now = Date.now()): string {
  let out = '';
  let time = now;
  for (let i = 0; i < 10; i++) {
    out = ALPHABET[time % 32]! + out;
    time = Math.floor(time / 32);
  }
  const random = randomBytes(10);
  // 80 bits → 16 characters of 5 bits.
  let bits = 0;
  let value = 0;
  for (const byte of random) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += ALPHABET[(value >> bits) & 31];
    }
    value &= (1 << bits) - 1;
  }
  return out;
}
