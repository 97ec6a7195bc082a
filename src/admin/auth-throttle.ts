/**
 * The brute-force limiter (src/auth/failure-limiter.ts) in front of admin API authentication.
 *
 * - A banned address gets HTTP 429 (code 971) with Retry-After before its token is looked at,
 *   on every route that needs one, so the answer is the same for any token, real or not.
 * - A request that presented a credential (Authorization or X-Auth-Key) and was refused as
 *   unauthenticated counts as a failure of its address; a request with no credential at all
 *   does not (a browser or probe on a wrong path is not guessing tokens).
 * - A slowed failure is answered after its delay by a timer; a request whose client goes away
 *   first ends the wait.
 *
 * The address is `req.clientAddress`, set before this runs: the socket's, or the forwarded one
 * when the peer is a proxy `--api-trust-proxy` names (client-address.ts).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyRequest } from 'fastify';
import type { FailureLimiter } from '../auth/index.ts';
import { ApiError } from '../errors.ts';
import { isPublicRoute } from './access.ts';

/** Runs `authenticate` (the access check) under the limiter's rules for the request's address. */
export async function throttleAuthentication(
  limiter: FailureLimiter,
  req: FastifyRequest,
  authenticate: () => void,
): Promise<void> {
  if (isPublicRoute(req.method, req.routeOptions.url)) return authenticate();
  try {
    authenticateLimited(limiter, req, authenticate);
  } catch (err) {
    const delayMs = err instanceof SlowedRefusal ? err.delayMs : 0;
    if (delayMs > 0) await delayUnlessGone(req, delayMs);
    throw err instanceof SlowedRefusal ? err.refusal : err;
  }
}

/** A failed authentication and how long to hold its answer. */
class SlowedRefusal extends Error {
  readonly refusal: ApiError;
  readonly delayMs: number;
  constructor(refusal: ApiError, delayMs: number) {
    super(refusal.message);
    this.refusal = refusal;
    this.delayMs = delayMs;
  }
}

/**
 * The synchronous part, for callers that cannot wait (requests the router refused): throws 429
 * for a banned address, counts a failed authentication and rethrows it (as a SlowedRefusal
 * when its answer is to be held back).
 */
export function authenticateLimited(
  limiter: FailureLimiter,
  req: FastifyRequest,
  authenticate: () => void,
): void {
  const admittance = limiter.check(req.clientAddress, 'api');
  if (admittance.banned)
    throw new ApiError(
      'AUTH_RATE_LIMITED',
      undefined,
      Math.max(1, Math.ceil(admittance.retryAfterMs / 1000)),
    );
  try {
    authenticate();
  } catch (err) {
    const presented = req.headers.authorization !== undefined || req.headers['x-auth-key'] !== undefined;
    if (!(err instanceof ApiError) || err.code !== 'AUTHENTICATION_ERROR' || !presented) throw err;
    const { delayMs } = limiter.recordFailure(req.clientAddress, 'api');
    throw delayMs > 0 ? new SlowedRefusal(err, delayMs) : err;
  }
}

/** The ApiError a refusal of `authenticateLimited` stands for (its delay left out). */
export function refusalOf(err: unknown): ApiError {
  if (err instanceof SlowedRefusal) return err.refusal;
  return err instanceof ApiError ? err : new ApiError('INTERNAL');
}

/** Waits `ms`, or less when the client closes its connection first. */
async function delayUnlessGone(req: FastifyRequest, ms: number): Promise<void> {
  const gone = new AbortController();
  const abort = (): void => gone.abort();
  req.raw.socket.once('close', abort);
  try {
    await sleep(ms, undefined, { signal: gone.signal });
  } catch {
    // The client left: the answer goes nowhere, so there is nothing left to wait for.
  } finally {
    req.raw.socket.off('close', abort);
  }
}
