/** Types of verify-broker-request.mjs: see that file for the contract. */
export interface BrokerPublicKeys {
  keys: Array<{ kid?: string; kty?: string; crv?: string; x?: string; [k: string]: unknown }>;
}
export interface VerifyOptions {
  /** Largest accepted difference between X-Signature-Timestamp and the clock, in seconds (default 300). */
  maxAgeSeconds?: number;
  /** The clock, epoch milliseconds (default Date.now()). */
  now?: number;
}
export function isValidBrokerRequest(
  request: Request,
  publicKeys: string | BrokerPublicKeys,
  options?: VerifyOptions,
): Promise<boolean>;
export function verifyBrokerSignature(
  parts: {
    body: string;
    signature: string | null | undefined;
    timestamp: string | null | undefined;
    keyId: string | null | undefined;
  },
  publicKeys: string | BrokerPublicKeys,
  options?: VerifyOptions,
): Promise<{ ok: true } | { ok: false; reason: string }>;
