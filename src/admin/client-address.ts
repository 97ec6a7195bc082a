/**
 * The client address of an admin API request, for token conditions (`condition.request_ip`):
 * the socket's peer, or, when that peer is a proxy the operator trusts (`--api-trust-proxy`, a
 * CIDR list), the X-Forwarded-For entry it vouches for.
 *
 * X-Forwarded-For is read from the right: each entry a trusted proxy appended is skipped, and
 * the first entry that is not a trusted proxy is the client. Entries left of it are the
 * client's own claims and are never used; a malformed entry stops the walk at the last
 * address a trusted proxy gave. Without the setting the header is ignored.
 * IPv4-mapped IPv6 peers (`::ffff:10.0.0.1`, a dual-stack listener) read as IPv4.
 */
import type { BlockList } from 'node:net';
import { isIP } from 'node:net';
import type { FastifyRequest } from 'fastify';
import { listHas } from '../cidr-list.ts';

const MAPPED_V4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i;

const unmapped = (address: string): string => MAPPED_V4.exec(address)?.[1] ?? address;

export function clientAddress(req: FastifyRequest, trustedProxies: BlockList | undefined): string {
  let address = unmapped(req.socket.remoteAddress ?? '');
  if (trustedProxies === undefined || !listHas(trustedProxies, address)) return address;
  const header = req.headers['x-forwarded-for'];
  const entries = (Array.isArray(header) ? header.join(',') : (header ?? '')).split(',');
  for (let i = entries.length - 1; i >= 0; i--) {
    const entry = unmapped(entries[i]!.trim());
    if (isIP(entry) === 0) break;
    address = entry;
    if (!listHas(trustedProxies, entry)) break;
  }
  return address;
}
