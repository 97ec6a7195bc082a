/**
 * Readiness after a sync: a node whose bootstrap broker gave way at the sync (nodes started
 * together on an empty bucket: the other node's namespace `local` won, docs/cluster.md) has no
 * default broker until the winner's reaches it, milliseconds later; it is not ready meanwhile,
 * or a load balancer would send it CONNECTs naming no broker that it refuses (0x88). Bounded: a
 * default broker deleted in the cluster on purpose delays readiness by `DEFAULT_BROKER_WAIT_MS`.
 */

/** How long a node whose default broker gave way at the sync waits for the cluster's. */
export const DEFAULT_BROKER_WAIT_MS = 5000;

export class DefaultBrokerWait {
  readonly #servesDefault: () => boolean;
  /** Whether a default broker was served when the link came up, and when the sync ended. */
  #hadDefault = false;
  #syncedAt = 0;

  constructor(servesDefault: () => boolean) {
    this.#servesDefault = servesDefault;
  }

  /** The link came up: a sync follows. */
  linkUp(): void {
    this.#hadDefault = this.#servesDefault();
  }

  synced(): void {
    this.#syncedAt = Date.now();
  }

  /** False while the default broker served before the sync has not come back (bounded). */
  get settled(): boolean {
    return (
      !this.#hadDefault || this.#servesDefault() || Date.now() - this.#syncedAt >= DEFAULT_BROKER_WAIT_MS
    );
  }
}
