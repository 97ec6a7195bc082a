/**
 * The outbound policy of webhooks (security review, issue 24, finding 2): which addresses the
 * server may connect to when it POSTs a broker's `on_publish.url`. Without it any tenant could
 * aim its hook at the server's own network (loopback, the cloud metadata service, RFC 1918
 * hosts) and read each target's answer back through the hook's metrics: an internal scanner.
 *
 * Invariants:
 * - Every address a webhook connects to is decided here first. A literal IP host is decided
 *   before each request (node:net connects to literals without a lookup); a host name is
 *   resolved and decided by `lookup`, which node:http calls at connect time, so the socket
 *   connects to exactly the addresses just vetted: a DNS answer that changes after the URL was
 *   checked (rebinding) is decided again, never trusted from before.
 * - A host is refused when any one of its addresses is (a name resolving to a public and an
 *   internal address is internal).
 * - IPv4 inside IPv6 (IPv4-mapped ::ffff:0:0/96, NAT64 64:ff9b::/96, 6to4 2002::/16) is
 *   decided as the IPv4 address it reaches; a zone id (`fe80::1%eth0`) is ignored.
 * - Allowed: public addresses; this machine (loopback, and its own interface addresses, class
 *   `self`) only with `hookAllowLoopback`, whose `auto` means local development
 *   (config.ts `servesOnlyThisMachine`: a loopback bind and no proxy flag); private networks (RFC 1918, CGNAT 100.64/10, ULA
 *   fc00::/7) with `hookAllowPrivate`; any address inside `hookAllowCidrs`, which alone opens
 *   link-local, metadata, unspecified, multicast, broadcast and reserved addresses.
 * - The decision on an address is pure (`classifyAddress`, `decideAddress`); only the resolver
 *   does I/O, and it is a parameter (tests map names to addresses without DNS).
 */
import { lookup as systemLookup } from 'node:dns/promises';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { networkInterfaces } from 'node:os';
import { parseCidrList, plainAddress } from '../../cidr-list.ts';
import { type Config, servesOnlyThisMachine } from '../../config.ts';

/** What an address is, for the policy (and for the operator's log). */
export type AddressClass =
  | 'public'
  | 'loopback'
  /** An address of one of this machine's interfaces: a connection to it reaches this host. */
  | 'self'
  | 'private'
  | 'link-local'
  | 'metadata'
  | 'unspecified'
  | 'multicast'
  | 'broadcast'
  | 'reserved';

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Resolves a host name to every address a connection to it could use. */
export type HostResolver = (hostname: string) => Promise<ResolvedAddress[]>;

/** getaddrinfo through node:dns, as node:http itself resolves (hosts file included). */
const resolveWithSystem: HostResolver = async (hostname) =>
  (await systemLookup(hostname, { all: true, order: 'verbatim' })).map((a) => ({
    address: a.address,
    family: a.family === 6 ? 6 : 4,
  }));

export interface EgressRules {
  /** Loopback targets and this machine's own addresses (`--hook-allow-loopback`). */
  allowLoopback: boolean;
  /** This machine's own addresses, refused as `self` unless loopback is allowed. */
  self: BlockList;
  /** RFC 1918, CGNAT and ULA targets (`--hook-allow-private`). */
  allowPrivate: boolean;
  /** Addresses allowed whatever their class (`--hook-allow-cidrs`). */
  allowCidrs: BlockList;
}

export interface AddressDecision {
  allowed: boolean;
  class: AddressClass;
}

type Subnet = readonly [AddressClass, string, number];

/** In priority order: the first class whose subnets hold an address is its class. */
const IPV4_SUBNETS: readonly Subnet[] = [
  ['metadata', '169.254.169.254', 32], // AWS, GCP, Azure, OpenStack, Oracle instance metadata
  ['metadata', '169.254.170.2', 32], // AWS ECS task metadata and credentials
  ['metadata', '169.254.170.23', 32], // AWS EKS Pod Identity
  ['metadata', '100.100.100.200', 32], // Alibaba Cloud
  ['metadata', '168.63.129.16', 32], // Azure WireServer (host agent, DNS, health probes)
  ['unspecified', '0.0.0.0', 8], // "this network": a connection to 0.0.0.0 reaches this host
  ['loopback', '127.0.0.0', 8],
  ['broadcast', '255.255.255.255', 32],
  ['multicast', '224.0.0.0', 4],
  ['link-local', '169.254.0.0', 16],
  ['private', '10.0.0.0', 8],
  ['private', '172.16.0.0', 12],
  ['private', '192.168.0.0', 16],
  ['private', '100.64.0.0', 10], // carrier-grade NAT, RFC 6598
  ['reserved', '192.0.0.0', 24], // IETF protocol assignments
  ['reserved', '198.18.0.0', 15], // benchmarking, also used by fake-IP DNS proxies
  ['reserved', '240.0.0.0', 4],
];

const IPV6_SUBNETS: readonly Subnet[] = [
  ['metadata', 'fd00:ec2::254', 128], // AWS instance metadata over IPv6
  ['metadata', 'fd00:ec2::23', 128], // AWS EKS Pod Identity over IPv6
  ['unspecified', '::', 128],
  ['loopback', '::1', 128],
  ['multicast', 'ff00::', 8],
  ['link-local', 'fe80::', 10],
  ['private', 'fc00::', 7], // unique local addresses
  ['private', 'fec0::', 10], // site-local (deprecated, still routed by some networks)
  ['private', '64:ff9b:1::', 48], // local-use NAT64, RFC 8215
  ['reserved', '::', 96], // IPv4-compatible (deprecated)
  ['reserved', '100::', 64], // discard-only
  ['reserved', '2001::', 32], // Teredo: the IPv4 address it reaches is obfuscated
];

const CLASSES = new Map<AddressClass, BlockList>();
for (const [cls, network, prefix] of IPV4_SUBNETS) subnetsOf(cls).addSubnet(network, prefix, 'ipv4');
for (const [cls, network, prefix] of IPV6_SUBNETS) subnetsOf(cls).addSubnet(network, prefix, 'ipv6');

function subnetsOf(cls: AddressClass): BlockList {
  let list = CLASSES.get(cls);
  if (list === undefined) {
    list = new BlockList();
    CLASSES.set(cls, list);
  }
  return list;
}

/** IPv6 prefixes carrying an IPv4 address, and where it sits (first byte). */
const IPV4_MAPPED = prefixList('::ffff:0:0', 96);
const NAT64 = prefixList('64:ff9b::', 96);
const SIX_TO_FOUR = prefixList('2002::', 16);

function prefixList(network: string, prefix: number): BlockList {
  const list = new BlockList();
  list.addSubnet(network, prefix, 'ipv6');
  return list;
}

/** The 16 bytes of an IPv6 address (`ip` is valid IPv6, without zone). */
function ipv6Bytes(ip: string): number[] {
  // The URL parser writes IPv6 hosts canonically: lower-case hex groups, no dotted quad.
  const canonical = new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  const [head = '', tail] = canonical.split('::');
  const first = head === '' ? [] : head.split(':');
  const last = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = [...first, ...Array<string>(8 - first.length - last.length).fill('0'), ...last];
  return groups.flatMap((g) => {
    const n = Number.parseInt(g, 16);
    return [n >> 8, n & 0xff];
  });
}

/** The IPv4 address an IPv6 address reaches through mapping, NAT64 or 6to4, if any. */
function embeddedIPv4(ip: string): string | undefined {
  let at: number;
  if (IPV4_MAPPED.check(ip, 'ipv6') || NAT64.check(ip, 'ipv6')) at = 12;
  else if (SIX_TO_FOUR.check(ip, 'ipv6')) at = 2;
  else return undefined;
  return ipv6Bytes(ip)
    .slice(at, at + 4)
    .join('.');
}

/** The class of an IP address; anything that is not one is `reserved` (never a target). */
export function classifyAddress(address: string): AddressClass {
  const { ip, family } = plainAddress(address);
  if (family === 0) return 'reserved';
  if (family === 6) {
    const v4 = embeddedIPv4(ip);
    if (v4 !== undefined) return classifyAddress(v4);
  }
  const type = family === 4 ? 'ipv4' : 'ipv6';
  for (const [cls, list] of CLASSES) if (list.check(ip, type)) return cls;
  return 'public';
}

/** Whether the rules let a webhook connect to `address`, and its class. */
export function decideAddress(address: string, rules: EgressRules): AddressDecision {
  let cls = classifyAddress(address);
  const { ip, family } = plainAddress(address);
  if (family !== 0) {
    const v4 = family === 6 ? embeddedIPv4(ip) : undefined;
    // A list holds an address when it holds it as written or the IPv4 address it reaches.
    const holds = (list: BlockList): boolean =>
      list.check(ip, family === 4 ? 'ipv4' : 'ipv6') || (v4 !== undefined && list.check(v4, 'ipv4'));
    if (holds(rules.allowCidrs)) return { allowed: true, class: cls };
    if ((cls === 'public' || cls === 'private') && holds(rules.self)) cls = 'self';
  }
  const allowed =
    cls === 'public' ||
    ((cls === 'loopback' || cls === 'self') && rules.allowLoopback) ||
    (cls === 'private' && rules.allowPrivate);
  return { allowed, class: cls };
}

/**
 * `--hook-allow-loopback`: `auto` allows this machine as a target only in local development: the
 * server binds loopback and nothing says a proxy on this machine exposes it to others.
 */
function allowsLoopback(
  config: Pick<Config, 'host' | 'hookAllowLoopback' | 'proxyProtocol' | 'wsTrustProxy'>,
): boolean {
  if (config.hookAllowLoopback !== 'auto') return config.hookAllowLoopback === 'true';
  return servesOnlyThisMachine(config);
}

/** Every address of this machine's network interfaces. */
function interfaceAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address));
}

function addressList(addresses: readonly string[]): BlockList {
  const list = new BlockList();
  for (const address of addresses) {
    const { ip, family } = plainAddress(address);
    if (family !== 0) list.addAddress(ip, family === 4 ? 'ipv4' : 'ipv6');
  }
  return list;
}

/**
 * A host refused by the policy. Its message names the addresses and their classes: it is for
 * the operator's log, never for the tenant.
 */
export class EgressRefusedError extends Error {
  override name = 'EgressRefusedError';
  readonly code = 'EGRESS_REFUSED';
  constructor(host: string, refused: readonly { address: string; class: AddressClass }[]) {
    super(
      `${host}: ${refused.map((r) => `${r.address} is ${r.class}`).join(', ')} (refused by the webhook egress policy)`,
    );
  }
}

export class EgressPolicy {
  readonly #rules: EgressRules;
  readonly #resolve: HostResolver;

  constructor(rules: EgressRules, resolve: HostResolver = resolveWithSystem) {
    this.#rules = rules;
    this.#resolve = resolve;
  }

  /**
   * The policy a configuration asks for. `interfaces` are this machine's addresses (by default
   * read from node:os once, at start-up).
   */
  static fromConfig(
    config: Pick<
      Config,
      'host' | 'hookAllowPrivate' | 'hookAllowCidrs' | 'hookAllowLoopback' | 'proxyProtocol' | 'wsTrustProxy'
    >,
    resolve?: HostResolver,
    interfaces: readonly string[] = interfaceAddresses(),
  ): EgressPolicy {
    return new EgressPolicy(
      {
        allowLoopback: allowsLoopback(config),
        self: addressList(interfaces),
        allowPrivate: config.hookAllowPrivate,
        allowCidrs: parseCidrList(config.hookAllowCidrs),
      },
      resolve,
    );
  }

  decide(address: string): AddressDecision {
    return decideAddress(address, this.#rules);
  }

  /**
   * For a URL's host (`[…]` around IPv6 allowed): the refusal of a literal IP address, or
   * undefined when it is allowed or is a host name (decided by `lookup` when connecting).
   */
  literalRefusal(host: string): EgressRefusedError | undefined {
    const ip = unbracketed(host);
    if (isIP(ip) === 0) return undefined;
    const decision = this.decide(ip);
    return decision.allowed
      ? undefined
      : new EgressRefusedError(host, [{ address: ip, class: decision.class }]);
  }

  /**
   * Every address of `host` (a literal is decided without resolving), all allowed; rejects with
   * EgressRefusedError when any is refused, and with the resolver's error (or ENOTFOUND) when
   * the name has no address.
   */
  async vet(host: string): Promise<ResolvedAddress[]> {
    const name = unbracketed(host);
    const literal = isIP(name);
    const addresses: ResolvedAddress[] =
      literal === 0 ? await this.#resolve(name) : [{ address: name, family: literal === 6 ? 6 : 4 }];
    if (addresses.length === 0)
      throw Object.assign(new Error(`${name} has no address`), { code: 'ENOTFOUND' });
    const refused: { address: string; class: AddressClass }[] = [];
    for (const { address } of addresses) {
      const decision = this.decide(address);
      if (!decision.allowed) refused.push({ address, class: decision.class });
    }
    if (refused.length > 0) throw new EgressRefusedError(name, refused);
    return addresses;
  }

  /**
   * node:http's `lookup` option: resolves at connect time through `vet`, so the socket only
   * ever gets addresses the policy allowed. Honours `family` and `all` (happy eyeballs asks
   * for every address).
   */
  readonly lookup: LookupFunction = (hostname, options, callback) => {
    this.vet(hostname).then(
      (addresses) => {
        const family = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : options.family;
        const usable =
          family === 4 || family === 6 ? addresses.filter((a) => a.family === family) : addresses;
        const first = usable[0];
        if (first === undefined)
          callback(
            Object.assign(new Error(`${hostname} has no IPv${family} address`), { code: 'ENOTFOUND' }),
            '',
          );
        else if (options.all) callback(null, usable);
        else callback(null, first.address, first.family);
      },
      (err: NodeJS.ErrnoException) => callback(err, ''),
    );
  };
}

function unbracketed(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}
