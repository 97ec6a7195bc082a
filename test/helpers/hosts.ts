/**
 * Host names for tests, answered from a table instead of DNS: no test may send a packet off
 * loopback, and a DNS query is one. `fakeResolver` answers from the table given (a function
 * value is asked again at every lookup, for answers that change) and records every name asked;
 * unknown names fail with ENOTFOUND, as getaddrinfo does. `testHosts` is what test servers use
 * by default: RFC 2606 example names (`*.example`, `example.com|net|org`) resolve to the RFC 5737
 * documentation address 192.0.2.1, which nothing in the tests ever connects to, and `localhost`
 * to 127.0.0.1.
 */
import { isIP } from 'node:net';
import type { HostResolver, ResolvedAddress } from '../../src/hooks/index.ts';

export interface FakeResolver {
  resolve: HostResolver;
  /** Every name asked, in order. */
  asked: string[];
}

type Answer = string[] | (() => string[]);

const EXAMPLE_NAME = /(^|\.)(example|example\.com|example\.net|example\.org)$/i;

export function fakeResolver(table: Record<string, Answer>, examples = true): FakeResolver {
  const asked: string[] = [];
  const resolve: HostResolver = async (hostname) => {
    asked.push(hostname);
    const name = hostname.toLowerCase();
    const answer = table[name] ?? (examples && EXAMPLE_NAME.test(name) ? ['192.0.2.1'] : undefined);
    if (answer === undefined)
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
    const addresses = typeof answer === 'function' ? answer() : answer;
    return addresses.map((address): ResolvedAddress => ({ address, family: isIP(address) === 6 ? 6 : 4 }));
  };
  return { resolve, asked };
}

export const testHosts: HostResolver = fakeResolver({ localhost: ['127.0.0.1'] }).resolve;
