/**
 * Lists of address ranges given in settings (`--hook-allow-cidrs`, `--api-trust-proxy`) and in
 * admin API token conditions: comma-separated `address/prefix` entries parsed into a node:net
 * BlockList. Below config.ts, which validates the settings at start-up, and the webhook egress
 * policy and the admin API, which apply them; imports nothing from src/.
 */
import { BlockList, isIP } from 'node:net';

/** Without a zone id (`%eth0`), lower-cased; '' when not an IP address. */
export function plainAddress(address: string): { ip: string; family: 0 | 4 | 6 } {
  const ip = address.replace(/%.*$/s, '').toLowerCase();
  const family = isIP(ip);
  return { ip, family: family === 4 || family === 6 ? family : 0 };
}

/** One `address/prefix` entry (a bare address is one host). */
export interface Cidr {
  ip: string;
  family: 4 | 6;
  prefix: number;
}

/** Parses one `address/prefix` entry; throws an Error naming it when it is not one. */
export function parseCidr(text: string): Cidr {
  const entry = text.trim();
  const slash = entry.indexOf('/');
  const { ip, family } = plainAddress(slash < 0 ? entry : entry.slice(0, slash));
  const bits = family === 4 ? 32 : 128;
  const prefixText = slash < 0 ? String(bits) : entry.slice(slash + 1);
  const prefix = /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : Number.NaN;
  if (family === 0 || !(prefix >= 0 && prefix <= bits))
    throw new Error(`${JSON.stringify(entry)} is not an IPv4 or IPv6 address/prefix`);
  return { ip, family, prefix };
}

/**
 * `--hook-allow-cidrs`: comma-separated `address/prefix` (a bare address is one host). Throws
 * an Error naming the first entry that is not one.
 */
export function parseCidrList(text: string): BlockList {
  const list = new BlockList();
  for (const raw of text.split(',')) {
    if (raw.trim() === '') continue;
    const { ip, family, prefix } = parseCidr(raw);
    list.addSubnet(ip, prefix, family === 4 ? 'ipv4' : 'ipv6');
  }
  return list;
}

/** Whether every address of `inner` lies in `outer` (both `address/prefix` entries). */
export function cidrWithin(inner: string, outer: string): boolean {
  const a = parseCidr(inner);
  const b = parseCidr(outer);
  if (a.family !== b.family || a.prefix < b.prefix) return false;
  const list = new BlockList();
  list.addSubnet(b.ip, b.prefix, b.family === 4 ? 'ipv4' : 'ipv6');
  return list.check(a.ip, a.family === 4 ? 'ipv4' : 'ipv6');
}

/** Whether `address` (an IP address, any zone id dropped) lies in `list`. */
export function listHas(list: BlockList, address: string): boolean {
  const { ip, family } = plainAddress(address);
  return family !== 0 && list.check(ip, family === 4 ? 'ipv4' : 'ipv6');
}
