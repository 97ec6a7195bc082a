/**
 * CONNECT admission: the broker a connection names (routing.ts), then whether that broker's
 * authType admits the client, and the identity it is admitted as. Synchronous: a CONNECT is
 * decided from memory (the registry, each tenant's key set and revocations), never the database.
 *
 * Invariants:
 * - The named broker's own authType decides; a host name, token audience or user name only
 *   chooses which broker's rules apply. A token verifies only against its broker's live keys
 *   and audience, so a token of broker A is refused at broker B.
 * - `NONE` admits only while anonymous access is allowed (`--allow-anonymous`; `auto` follows
 *   `servesOnlyThisMachine`).
 * - Failed authentications (BAD_CREDENTIALS, NOT_AUTHORIZED) are counted per source address by
 *   the shared FailureLimiter; a banned address is refused (BANNED) before routing or any
 *   credential is looked at, so the answer is the same whichever client id or token it tried.
 * - Every refusal is a catalogue code (src/errors.ts) with a detail for the log; the detail never
 *   carries the token itself.
 */
import {
  allowsEverything,
  CertificateClientIds,
  type ClientIdentity,
  type FailureLimiter,
  isAuthFailure,
  TokenVerifier,
} from '../auth/index.ts';
import { type Config, servesOnlyThisMachine } from '../config.ts';
import type { ErrorCode } from '../errors.ts';
import type { BrokerRecord } from '../store/index.ts';
import type { ConnectionInfo } from '../transport/index.ts';
import type { TenantRegistry } from './registry.ts';
import { MAX_TOKEN_BYTES, routeConnection } from './routing.ts';
import { addressOf, type Tenant } from './tenant.ts';

export type Admission =
  | {
      tenant: Tenant;
      /** The client id to use when the credentials decide it (empty client id + token `sub`). */
      clientId: string | undefined;
      identity: ClientIdentity;
    }
  | {
      refuse: ErrorCode;
      detail: string;
      /** The broker whose rules refused it; absent when no broker was found (its counters). */
      tenant?: Tenant;
      /** Milliseconds to wait before answering (the limiter slows this address down). */
      delayMs?: number;
    };

/** What CONNECT carries that authentication reads. */
export interface ConnectCredentials {
  clientId: string;
  username?: string | undefined;
  password?: Buffer | undefined;
}

/** What of the connection admission reads: the names it carries and its verified certificate. */
export type AdmissionInfo = Pick<
  ConnectionInfo,
  'servername' | 'host' | 'clientCertificate' | 'remoteAddress'
>;

export class ConnectAdmission {
  readonly #registry: TenantRegistry;
  readonly #config: Config;
  readonly #verifier: TokenVerifier;
  readonly #certificateIds: CertificateClientIds;
  /** Compiled per-broker patterns, by the record they were read from (an update replaces it). */
  readonly #brokerCertificateIds = new WeakMap<BrokerRecord, CertificateClientIds>();
  readonly #failures: FailureLimiter;
  readonly anonymousAllowed: boolean;

  constructor(registry: TenantRegistry, config: Config, failures: FailureLimiter) {
    this.#registry = registry;
    this.#config = config;
    this.#failures = failures;
    this.#verifier = new TokenVerifier({ clockSkewSeconds: config.jwtClockSkew });
    this.#certificateIds = new CertificateClientIds(config.mtlsClientIdPattern);
    this.anonymousAllowed =
      config.allowAnonymous === 'auto' ? servesOnlyThisMachine(config) : config.allowAnonymous === 'true';
  }

  /** The tenant serving a new connection and whether its authentication admits the client. */
  admit(info: AdmissionInfo, credentials: ConnectCredentials): Admission {
    const address = info.remoteAddress;
    const admittance = this.#failures.check(address, 'mqtt');
    if (admittance.banned)
      return {
        refuse: 'BANNED',
        detail: `too many failed authentications from this address; retry in ${Math.ceil(admittance.retryAfterMs / 1000)} s`,
      };
    const route = routeConnection(
      {
        servername: info.servername,
        host: info.host,
        username: credentials.username,
        password: credentials.password,
      },
      this.#registry,
      this.#config.domain,
      this.#config.defaultBroker,
    );
    if ('refuse' in route) return route;
    const { tenant } = route;
    const admission = this.#admitTo(tenant, info, credentials);
    if ('refuse' in admission) {
      admission.tenant = tenant;
      if (isAuthFailure(admission.refuse))
        admission.delayMs = this.#failures.recordFailure(address, 'mqtt').delayMs;
    }
    return admission;
  }

  /** The rules of the broker's authType. */
  #admitTo(tenant: Tenant, info: AdmissionInfo, credentials: ConnectCredentials): Admission {
    const authType = tenant.record.authType;
    if (authType === 'NONE') {
      if (!this.anonymousAllowed)
        return {
          refuse: 'NOT_AUTHORIZED',
          detail: 'anonymous access is off on this server (see --allow-anonymous)',
        };
      return { tenant, clientId: undefined, identity: { method: 'anonymous' } };
    }
    if (authType === 'MTLS_AND_TOKEN' && this.#config.mtlsAndToken === 'both')
      return this.#admitCertificateAndToken(tenant, info, credentials);
    if (authType === 'MTLS' || (authType === 'MTLS_AND_TOKEN' && info.clientCertificate !== undefined))
      return this.#admitCertificate(tenant, info, credentials);
    return this.#admitToken(tenant, credentials);
  }

  /**
   * MTLS rules: a verified client certificate whose CN names a client id (the CN itself, or
   * through the broker's `mtls_client_id_pattern`, by default `--mtls-client-id-pattern`); the CONNECT's client id is that id or empty.
   */
  #admitCertificate(tenant: Tenant, info: AdmissionInfo, credentials: ConnectCredentials): Admission {
    const certificate = info.clientCertificate;
    if (certificate === undefined)
      return {
        refuse: 'NOT_AUTHORIZED',
        detail: 'broker requires a verified client certificate (mutual TLS)',
      };
    const cn = certificate.subjectCN;
    const clientId = this.#certificateIdsOf(tenant).clientIdOf(cn);
    if (clientId === undefined)
      return {
        refuse: 'NOT_AUTHORIZED',
        detail: `certificate CN ${cn.slice(0, 64)} does not match the broker's client id pattern`,
      };
    if (credentials.clientId !== '' && credentials.clientId !== clientId)
      return {
        refuse: 'CLIENT_ID_NOT_VALID',
        detail: `client id does not match certificate CN ${cn.slice(0, 64)} (client id ${clientId.slice(0, 64)})`,
      };
    return { tenant, clientId, identity: { method: 'certificate', certificate } };
  }

  /** The broker's CN → client id rule: its own pattern, else the server's. */
  #certificateIdsOf(tenant: Tenant): CertificateClientIds {
    const own = tenant.record.mtlsClientIdPattern;
    if (own === null) return this.#certificateIds;
    let rule = this.#brokerCertificateIds.get(tenant.record);
    if (rule === undefined) {
      rule = new CertificateClientIds(own);
      this.#brokerCertificateIds.set(tenant.record, rule);
    }
    return rule;
  }

  /**
   * MTLS_AND_TOKEN with `--mtls-and-token both`: the certificate and the token must each admit
   * the client, and name the same client (the token's `sub` = the certificate's client id).
   * The identity is the token's (ACL, expiry, revocation) plus the certificate.
   */
  #admitCertificateAndToken(tenant: Tenant, info: AdmissionInfo, credentials: ConnectCredentials): Admission {
    const byCertificate = this.#admitCertificate(tenant, info, credentials);
    if ('refuse' in byCertificate) return byCertificate;
    const byToken = this.#admitToken(tenant, credentials);
    if ('refuse' in byToken) return byToken;
    if (byToken.clientId !== byCertificate.clientId)
      return {
        refuse: 'NOT_AUTHORIZED',
        detail: "the token's subject is not the client the certificate names",
      };
    return {
      tenant,
      clientId: byToken.clientId,
      identity: { ...byToken.identity, method: 'certificate+token', certificate: info.clientCertificate },
    };
  }

  /** TOKEN rules (reference section 2): password = JWT, client id = `sub` or empty. */
  #admitToken(tenant: Tenant, credentials: ConnectCredentials): Admission {
    const where = addressOf(tenant.record);
    const password = credentials.password;
    if (password === undefined || password.length === 0)
      return { refuse: 'BAD_CREDENTIALS', detail: `broker ${where} requires a token as the password` };
    if (password.length > MAX_TOKEN_BYTES)
      return { refuse: 'BAD_CREDENTIALS', detail: `password longer than ${MAX_TOKEN_BYTES} bytes` };
    const result = this.#verifier.verify(password.toString('utf8'), tenant.credentials.keys, where);
    if (!result.ok) return { refuse: 'BAD_CREDENTIALS', detail: `token refused: ${result.reason}` };
    const token = result.token;
    if (tenant.credentials.revoked.has(token.jti))
      return { refuse: 'BAD_CREDENTIALS', detail: `token ${token.jti} is revoked` };
    if (credentials.clientId !== '' && credentials.clientId !== token.sub)
      return { refuse: 'CLIENT_ID_NOT_VALID', detail: `client id is not the token's subject` };
    const username = credentials.username;
    if (
      this.#config.requireUsernameMatch &&
      username !== undefined &&
      username !== '' &&
      username !== token.sub
    )
      return { refuse: 'BAD_CREDENTIALS', detail: 'user name does not match the client id' };
    // A token allowing everything (`#`, Cloudflare's only value) needs no per-message checks.
    const identity: ClientIdentity = { method: 'token', jti: token.jti, kid: token.kid };
    if (!allowsEverything(token.acl)) identity.acl = token.acl;
    // Skew: the verifier accepts the token until exp + skew, so the session lasts as long.
    if (token.exp !== undefined) identity.expiresAt = (token.exp + this.#config.jwtClockSkew) * 1000;
    return { tenant, clientId: token.sub, identity };
  }
}
