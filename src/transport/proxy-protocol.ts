/**
 * PROXY protocol header parser (HAProxy's proxy-protocol.txt, versions 1 and 2), as sent by
 * HAProxy, nginx (`proxy_protocol on`), AWS NLB / Elastic Load Balancing and others in front of
 * a TCP service. Pure: bytes in, a verdict out; the socket side lives in proxy-header-reader.ts.
 *
 * `parseProxyHeader(bytes)` looks at the start of a connection's bytes and answers
 * - `incomplete`: every byte so far fits a header, more are needed (never past the size bounds:
 *   107 bytes for v1, 16 + 65535 for v2); `atLeast` is how many bytes must have arrived before
 *   the answer can change (the whole v2 header once its length is known, else one more byte),
 *   so that a reader collecting chunks parses again only then;
 * - `invalid`: not a PROXY header (the connection is to be closed), with the reason;
 * - `ok`: the header's length (the bytes after it belong to the client) and the client's
 *   address, or no address when the header says to use the connection's own: v2 LOCAL (a health
 *   check from the proxy itself), v1 UNKNOWN, v2 UNSPEC or AF_UNIX families.
 *
 * Decisions: v2 TLVs are skipped, not interpreted; v2 DGRAM (UDP) is refused, this being a
 * stream listener; v1 fields must be exactly as the spec writes them (single spaces, decimal
 * ports without leading zeros, canonical IPv4 dotted quads), anything else is invalid.
 */
import { isIPv4, isIPv6 } from 'node:net';

export interface Endpoint {
  address: string;
  port: number;
}

export type ProxyHeader =
  | { status: 'incomplete'; atLeast: number }
  | { status: 'invalid'; reason: string }
  | {
      status: 'ok';
      version: 1 | 2;
      /** Bytes of the header; the client's own bytes follow. */
      length: number;
      /** The client as the proxy saw it; absent: use the connection's address. */
      source?: Endpoint;
      destination?: Endpoint;
    };

/** The v2 signature: \r\n\r\n\0\r\nQUIT\n. */
export const V2_SIGNATURE = Buffer.from([
  0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
]);
const V1_PREFIX = Buffer.from('PROXY ', 'ascii');
/** v1 worst case per the spec: "PROXY UNKNOWN " + two 39-char IPv6 addresses + two 5-digit ports + spaces + CRLF. */
export const V1_MAX_LENGTH = 107;
const V2_FIXED = 16;
/** The largest header either version allows. */
export const MAX_HEADER_LENGTH = V2_FIXED + 0xffff;

/** Incomplete until one more byte has arrived. */
const moreThan = (data: Buffer): ProxyHeader => ({ status: 'incomplete', atLeast: data.length + 1 });
const invalid = (reason: string): ProxyHeader => ({ status: 'invalid', reason });

/** Whether the first bytes of `data` match the first bytes of `prefix` (as far as `data` goes). */
function startsLike(data: Buffer, prefix: Buffer): boolean {
  const n = Math.min(data.length, prefix.length);
  return data.subarray(0, n).equals(prefix.subarray(0, n));
}

export function parseProxyHeader(data: Buffer): ProxyHeader {
  if (data.length === 0) return moreThan(data);
  if (startsLike(data, V2_SIGNATURE))
    return data.length < V2_SIGNATURE.length ? moreThan(data) : parseV2(data);
  if (startsLike(data, V1_PREFIX)) return data.length < V1_PREFIX.length ? moreThan(data) : parseV1(data);
  return invalid('no PROXY protocol signature');
}

// ---- version 1: one text line ----

function port(text: string): number | undefined {
  if (!/^(0|[1-9][0-9]{0,4})$/.test(text)) return undefined;
  const n = Number(text);
  return n <= 0xffff ? n : undefined;
}

function parseV1(data: Buffer): ProxyHeader {
  const window = data.subarray(0, V1_MAX_LENGTH);
  const lf = window.indexOf(0x0a);
  if (lf < 0) {
    // Only printable ASCII may precede the CRLF; reject binary garbage without waiting for more.
    for (const byte of window)
      if ((byte < 0x20 || byte > 0x7e) && byte !== 0x0d) return invalid('v1: not text');
    const cr = window.indexOf(0x0d);
    if (cr >= 0 && cr !== window.length - 1) return invalid('v1: CR not followed by LF');
    return window.length >= V1_MAX_LENGTH
      ? invalid(`v1: no CRLF within ${V1_MAX_LENGTH} bytes`)
      : moreThan(data);
  }
  if (lf === 0 || data[lf - 1] !== 0x0d) return invalid('v1: line not ended by CRLF');
  const line = data.toString('latin1', 0, lf - 1);
  if (!/^[\x20-\x7e]*$/.test(line)) return invalid('v1: not text');
  const length = lf + 1;
  const fields = line.split(' ');
  const protocol = fields[1];
  // [proxy-protocol 2.1] UNKNOWN: the rest of the line is ignored; use the connection's address.
  if (protocol === 'UNKNOWN') return { status: 'ok', version: 1, length };
  if (protocol !== 'TCP4' && protocol !== 'TCP6')
    return invalid(`v1: unknown protocol ${JSON.stringify(protocol)}`);
  if (fields.length !== 6) return invalid('v1: expected 6 space-separated fields');
  const [, , src, dst, srcPort, dstPort] = fields as [string, string, string, string, string, string];
  const isAddress = protocol === 'TCP4' ? isIPv4 : isIPv6;
  if (!isAddress(src) || !isAddress(dst)) return invalid(`v1: bad ${protocol} address`);
  const sp = port(srcPort);
  const dp = port(dstPort);
  if (sp === undefined || dp === undefined) return invalid('v1: bad port');
  return {
    status: 'ok',
    version: 1,
    length,
    source: { address: src, port: sp },
    destination: { address: dst, port: dp },
  };
}

// ---- version 2: binary ----

/** RFC 5952 text of a 16-byte IPv6 address: lower case, longest zero run (of 2+) as `::`. */
export function formatIPv6(bytes: Buffer): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i));
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

function parseV2(data: Buffer): ProxyHeader {
  if (data.length < V2_FIXED) {
    // Check what has arrived of the fixed part, so garbage is refused without waiting.
    if (data.length > 12 && (data[12]! & 0xf0) !== 0x20) return invalid('v2: version is not 2');
    return moreThan(data);
  }
  const versionCommand = data[12]!;
  if (versionCommand >> 4 !== 2) return invalid('v2: version is not 2');
  const command = versionCommand & 0x0f;
  if (command !== 0x0 && command !== 0x1) return invalid(`v2: unknown command ${command}`);
  const family = data[13]! >> 4;
  const transport = data[13]! & 0x0f;
  const declared = data.readUInt16BE(14);
  const length = V2_FIXED + declared;
  if (family > 3 || transport > 2) return invalid('v2: unknown address family or transport');
  if (data.length < length) return { status: 'incomplete', atLeast: length };
  // [proxy-protocol 2.2] LOCAL: the proxy's own connection (health check); the address block is ignored.
  if (command === 0x0) return { status: 'ok', version: 2, length };
  if (transport === 2) return invalid('v2: DGRAM on a stream listener');
  if (family === 0 || family === 3) return { status: 'ok', version: 2, length }; // UNSPEC, AF_UNIX
  const block = data.subarray(V2_FIXED, length);
  if (family === 1) {
    if (block.length < 12) return invalid('v2: INET address block shorter than 12 bytes');
    return {
      status: 'ok',
      version: 2,
      length,
      source: { address: [...block.subarray(0, 4)].join('.'), port: block.readUInt16BE(8) },
      destination: { address: [...block.subarray(4, 8)].join('.'), port: block.readUInt16BE(10) },
    };
  }
  if (block.length < 36) return invalid('v2: INET6 address block shorter than 36 bytes');
  return {
    status: 'ok',
    version: 2,
    length,
    source: { address: formatIPv6(block.subarray(0, 16)), port: block.readUInt16BE(32) },
    destination: { address: formatIPv6(block.subarray(16, 32)), port: block.readUInt16BE(34) },
  };
}
