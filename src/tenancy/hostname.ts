/**
 * Host-name routing: `<broker>.<namespace>.<domain>` names a broker. The name comes from TLS
 * SNI or the WebSocket Host header (both lower-cased by the transport). Any other host (the
 * bare domain, an IP address, a foreign name) names no broker, and the listener's default
 * broker serves the connection.
 */
export interface BrokerAddress {
  namespace: string;
  broker: string;
}

export function brokerAddressOf(host: string | undefined, domain: string): BrokerAddress | undefined {
  if (host === undefined) return undefined;
  const h = host.toLowerCase().replace(/\.$/, '');
  const suffix = `.${domain.toLowerCase()}`;
  if (!h.endsWith(suffix)) return undefined;
  const labels = h.slice(0, -suffix.length).split('.');
  if (labels.length !== 2 || labels[0] === '' || labels[1] === '') return undefined;
  return { broker: labels[0]!, namespace: labels[1]! };
}

/** The host name of a broker. */
export const brokerHostname = (broker: string, namespace: string, domain: string): string =>
  `${broker}.${namespace}.${domain}`;
