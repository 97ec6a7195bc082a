/**
 * The client id a verified client certificate stands for (mutual TLS). Without a rule the
 * client id is the certificate's subject CN; with a pattern (a broker's `mtls_client_id_pattern`,
 * by default the server's `--mtls-client-id-pattern`) the CN must match
 * the pattern, anchored at both ends, and the client id is its first capture group (the whole
 * CN when the pattern has none). A CN that does not match names no client: undefined.
 */

export class CertificateClientIds {
  readonly #pattern: RegExp | undefined;

  /** `pattern` is the configured source; empty means "the CN is the client id". */
  constructor(pattern: string) {
    this.#pattern = pattern === '' ? undefined : new RegExp(`^(?:${pattern})$`, 'u');
  }

  /** Why `pattern` cannot be a rule (not a regular expression), or undefined when it can. */
  static check(pattern: string): string | undefined {
    try {
      new CertificateClientIds(pattern);
      return undefined;
    } catch (err) {
      return (err as Error).message;
    }
  }

  clientIdOf(subjectCN: string): string | undefined {
    if (this.#pattern === undefined) return subjectCN === '' ? undefined : subjectCN;
    const match = this.#pattern.exec(subjectCN);
    if (match === null) return undefined;
    const id = match.length > 1 ? match[1] : match[0];
    return id === undefined || id === '' ? undefined : id;
  }
}
