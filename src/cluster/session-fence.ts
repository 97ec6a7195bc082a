/**
 * Ownership without split brain (issue 19): a node that can no longer reach NATS cannot prove it
 * still owns its persistent sessions (another node may resume them from the journal), so after
 * `FENCE_MS` without contact it stops serving them, and it gives them up to the journal when
 * contact returns.
 *
 * - Contact: the link came up, or a round trip to the NATS server (`flush`) answered; one is
 *   asked every `PROBE_MS` (a partition that closes no TCP connection is noticed this way, not
 *   after the NATS client's two missed pings).
 * - Fenced (`FENCE_MS` after the last contact): every connection of a persistent session (Session
 *   Expiry > 0, v3 clean session 0) is closed with 0x9C Use another server (v3: closed), and a
 *   CONNECT asking for one is refused with 0x88 Server unavailable (v3: 0x03) until contact
 *   returns; clean sessions are served as before. The journal fails what it holds and what
 *   comes (their acknowledgements say so: 0x80), so nothing is acknowledged that the journal
 *   will not have.
 * - Contact back: the persistent sessions held here are checked against the journal as at a
 *   start (journal-restart.ts, `regained`): one another node wrote meanwhile (resumed it from the
 *   journal after forgetting this node) is let go without a trace, the others are kept (and
 *   journaled again); persistent CONNECTs wait for the check (0x88 until then).
 * - Another node asking for a session while this one is silent waits until it is forgotten (6 s
 *   after its last announcement, later than this fence: session-handover.ts), so two nodes
 *   never serve one session.
 * - Only with a journal in use: without JetStream nothing else holds the sessions, and a node
 *   cut off keeps them, as before.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { Broker } from '../broker/index.ts';

/** How long without contact before persistent sessions stop being served here. */
export const FENCE_MS = 3000;
/** How often a round trip to NATS is asked. */
export const PROBE_MS = 1000;

export interface FenceHost {
  readonly logger: Logger;
  connection(): NatsConnection | undefined;
  brokers(): Iterable<Broker>;
  /** Whether the session journal is in use (fencing hands sessions over to it). */
  journaled(): boolean;
  /** The fence went up (the journal fails what it holds and what comes), or down. */
  fenced(up: boolean): void;
  /** Contact is back after the fence: the sessions held here are checked (journal-restart.ts). */
  regained(): void;
}

export class SessionFence {
  readonly #host: FenceHost;
  #contact = Date.now();
  #fenced = false;
  #probing = false;
  readonly #timer: NodeJS.Timeout;
  /** Times the fence went up since start. */
  count = 0;

  constructor(host: FenceHost) {
    this.#host = host;
    this.#timer = setInterval(() => this.#tick(), PROBE_MS);
    this.#timer.unref();
  }

  /** Whether persistent sessions are refused here now. */
  get fenced(): boolean {
    return this.#fenced;
  }

  /** The link came up: contact. */
  linkUp(): void {
    this.#touch();
  }

  #tick(): void {
    const nc = this.#host.connection();
    if (nc !== undefined && !this.#probing) {
      this.#probing = true;
      const timeout = new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error('timeout')), PROBE_MS * 1.5),
      );
      Promise.race([nc.flush(), timeout])
        .then(
          () => this.#touch(),
          () => {},
        )
        .finally(() => {
          this.#probing = false;
        });
    }
    if (!this.#fenced && Date.now() - this.#contact > FENCE_MS && this.#host.journaled()) this.#up();
  }

  #touch(): void {
    this.#contact = Date.now();
    if (this.#fenced) this.#down();
  }

  #up(): void {
    this.#fenced = true;
    this.count++;
    this.#host.fenced(true);
    let closed = 0;
    for (const broker of this.#host.brokers())
      for (const session of broker.sessions.values()) {
        if (session.expiryInterval === 0 || session.link === undefined) continue;
        try {
          session.link.disconnect('USE_ANOTHER_SERVER', 'this node is cut off from the cluster');
          closed++;
        } catch (err) {
          this.#host.logger.error({ err }, 'cluster: a persistent session connection could not be closed');
        }
      }
    this.#host.logger.warn(
      { event: 'cluster_sessions_fenced', closed },
      `cluster: no contact with NATS for ${FENCE_MS} ms: persistent sessions are not served here until it is back (${closed} connections closed)`,
    );
  }

  #down(): void {
    this.#fenced = false;
    this.#host.fenced(false);
    this.#host.regained();
    this.#host.logger.warn(
      { event: 'cluster_sessions_unfenced' },
      'cluster: NATS is back: persistent sessions served here again once checked against the journal',
    );
  }

  close(): void {
    clearInterval(this.#timer);
  }
}
