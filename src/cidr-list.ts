/**
 * Lists of address ranges given in settings (`--hook-allow-cidrs`): comma-separated
 * `address/prefix` entries parsed into a node:net BlockList. Below config.ts, which validates
 * the setting at start-up, and the webhook egress policy, which applies it; imports nothing
 * from src/.
 */
import { BlockList, isIP } from 'node:net';

/** Without a zone id (`%eth0`), lower-cased; '' when not an IP address. */
export function plainAddress(address: string): { ip: string; family: 0 | 4 | 6 } {
  const ip = address.replace(/%.*$/s, '').toLowerCase();
  const family = isIP(ip);
  return { ip, family: family === 4 || family === 6 ? family : 0 };
}

/**
 * `--hook-allow-cidrs`: comma-separated `address/prefix` (a bare address is one host). Throws
 * an Error naming the first entry that is not one.
 */
export function parseCidrList(text: string): BlockList {
  const list = new BlockList();
  for (const raw of text.split(',')) {
    const entry = raw.trim();
    if (entry === '') continue;
    const slash = entry.indexOf('/');
    const { ip, family } = plainAddress(slash < 0 ? entry : entry.slice(0, slash));
    const bits = family === 4 ? 32 : 128;
    const prefixText = slash < 0 ? String(bits) : entry.slice(slash + 1);
    const prefix = /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : Number.NaN;
    if (family === 0 || !(prefix >= 0 && prefix <= bits))
      throw new Error(`${JSON.stringify(entry)} is not an IPv4 or IPv6 address/prefix`);
    list.addSubnet(ip, prefix, family === 4 ? 'ipv4' : 'ipv6');
  }
  return list;
}
