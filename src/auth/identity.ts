/**
 * Who a connection authenticated as, decided once at CONNECT and kept on the connection for
 * authorization (ACLs), revocation (by `jti`) and expiry (disconnect at `exp`).
 */
import type { TopicAcl } from './topic-acl.ts';

export interface ClientIdentity {
  method: 'anonymous' | 'token' | 'certificate' | 'certificate+token';
  /** The token's id, when the client connected with a token. */
  jti?: string;
  /** The key that signed the token: rotating it out disconnects the session. */
  kid?: string;
  /** When the credentials stop being valid, in epoch milliseconds. */
  expiresAt?: number;
  /** The topic ACL; absent: everything allowed. */
  acl?: TopicAcl;
  /** The verified client certificate (mutual TLS). */
  certificate?: { subjectCN: string; fingerprint256: string };
}
