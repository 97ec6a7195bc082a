/**
 * One control plane for the cluster: accounts, namespaces, brokers (with their keys), admin API
 * tokens, client-token issues and revocations, and deployed functions live in the JetStream KV
 * bucket `pubsub-control`, one key per record (src/tenancy/control-replica.ts lists the keys); each
 * node's SQLite is a cache of it.
 *
 * - Sync (at every link up, before the node is ready): watch the bucket's last values; once
 *   they are all in, the bucket wins over the cache: a record the bucket holds replaces the
 *   node's, a record the bucket deleted (its delete marker is the key's last value) is deleted
 *   here, and a record the bucket never had (a data dir that joins for the first time, or was
 *   made alone) is written to it with `create`. Then the node is ready (`synced`), and every
 *   later change in the bucket is applied as it comes.
 * - A change on this node (an admin API request; the API calls `commit` before it answers):
 *   the cache is compared with what this node last knew of the bucket, and each difference is
 *   written, parents first: `create` for a new key (it fails when the key exists: two nodes
 *   made the same name), `update` at the revision known for a changed one, a delete at that
 *   revision for a removed one. A write refused because the bucket moved on is a conflict: the
 *   bucket's record is applied here (the first writer wins) and `commit` reports it. So is a
 *   change of another node that reaches this one between the API's write to the cache and
 *   `commit` finding it (the cache then holds neither what this node knew of the bucket nor
 *   what arrived): the arriving record is applied, and the next writer's `commit` reports it.
 * - Echoes: a node sees its own writes in the watch; a revision at or below the one it knows
 *   for the key, or the very value it is writing, is not applied again.
 * - A record that cannot be applied here (logged) is never taken for a local deletion: its key
 *   is left out of the comparison until the next sync.
 * - A watch that falls behind is started anew (a full sync): its consumer lives on one NATS
 *   server, and when that server dies while this node's link stays up (it is connected to
 *   another server of the NATS cluster) the watch neither ends nor fails, it just stops. Every
 *   `WATCH_CHECK_MS` the bucket's last sequence is read; one the watch has still not brought at
 *   the next check means it stalled (test/cluster/nats-cluster.test.ts).
 * - An API request waits until the watch has brought what the bucket held when it came
 *   (`caughtUp`): read-your-writes across nodes, not just within milliseconds.
 * While the link is down `synced` is false (writes through the API are refused, 503), the
 * cache keeps serving reads and admitting clients, and the next link up syncs again: no node
 * serves a revocation made elsewhere for longer than its link is down.
 */
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import type { KV, KvEntry, KvWatchEntry } from '@nats-io/kv';
import type { NatsConnection, QueuedIterator } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { type ControlReplica, KEY_KINDS, kindRank } from '../tenancy/index.ts';
import { openBucket } from './kv-bucket.ts';

export const CONTROL_BUCKET = 'pubsub-control';
const RETRY_MS = 1000;
/**
 * Waits between attempts of a write the bucket could not take (not a refusal: JetStream
 * electing a leader after a NATS server died answers "jetstream is not enabled" for a few
 * seconds): ~7 s in all, then the commit fails as unavailable (503) and the change is undone
 * here (the bucket's record, or none, is applied again), so the cluster never holds a change
 * its API refused and a retry starts afresh.
 */
const UNAVAILABLE_RETRY_MS = [250, 500, 1000, 2000, 3000];

/** The bucket refused a compare-and-set: another node's write came first. */
function isRefusal(err: unknown): boolean {
  return (
    err instanceof JetStreamApiError &&
    (err.code === JetStreamApiCodes.StreamWrongLastSequence ||
      err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  );
}

/** `commit` could not write to the bucket (not a conflict: the cluster's store did not answer). */
export class ControlPlaneUnavailable extends Error {
  override name = 'ControlPlaneUnavailable';
}

/** How often the watch's progress is checked against the bucket (see the header). */
export const WATCH_CHECK_MS = 2000;
/** The longest an API request waits for this node's watch to catch up with the bucket. */
const CATCH_UP_MS = 1000;

export interface ControlSyncOptions {
  readonly replica: ControlReplica;
  /** Replicas of the bucket when this node creates it (`--cluster-replicas`, resolved at link up). */
  readonly replicas: () => number;
  readonly logger: Logger;
  /**
   * Each time the node has synced the bucket (at every link up, after a followed watch ended):
   * its brokers are the cluster's from then on (a bootstrap broker that gave way is replaced),
   * so what is kept per broker (retained messages) is loaded after it.
   */
  readonly onSynced?: (nc: NatsConnection) => void;
}

export class ControlSync {
  readonly #replica: ControlReplica;
  readonly #replicas: () => number;
  readonly #log: Logger;
  readonly #onSynced: ((nc: NatsConnection) => void) | undefined;
  #kv: KV | undefined;
  #watch: QueuedIterator<KvWatchEntry> | undefined;
  /** Bumped at every link change: work of an older link stops. */
  #generation = 0;
  #synced = false;
  /** The bucket's last values are in the cache: only then may the cache's differences be written. */
  #reconciled = false;
  /** The bucket's live records as this node holds them, key → JSON. */
  readonly #known = new Map<string, string>();
  /** The last revision seen or written per key, deletes included. */
  readonly #revision = new Map<string, number>();
  /** Writes on their way to the bucket: key → value (null: a delete). */
  readonly #pushing = new Map<string, string | null>();
  /** Keys whose record could not be applied here (see the header). */
  readonly #unapplied = new Set<string>();
  #chain: Promise<unknown> = Promise.resolve();
  /** Changes of this node that lost to another node's since start (metrics). */
  #conflicts = 0;
  /** Watches found stalled and restarted since start (metrics). */
  #watchRestarts = 0;
  /** Records the bucket did not take within the retries since start (metrics). */
  #unavailable = 0;
  /** Changes of this node replaced by another node's before `commit` found them (see the header). */
  #replaced = 0;
  /** Bumped at every record of the bucket applied here: `#push` finds its differences anew. */
  #applied = 0;
  #warned = false;
  /** The highest bucket sequence this node has seen (watched, or written itself). */
  #seen = 0;
  /** The bucket's last sequence at the previous check, when the watch had not brought it yet. */
  #awaited = 0;
  #watchCheck: NodeJS.Timeout | undefined;

  constructor(options: ControlSyncOptions) {
    this.#replica = options.replica;
    this.#replicas = options.replicas;
    this.#log = options.logger;
    this.#onSynced = options.onSynced;
  }

  /** Changes made here that lost to another node's since start (the first writer wins). */
  get conflicts(): number {
    return this.#conflicts;
  }

  /** Watches found stalled and restarted since start. */
  get watchRestarts(): number {
    return this.#watchRestarts;
  }

  /** Records of this node the bucket did not take within the retries since start. */
  get unavailable(): number {
    return this.#unavailable;
  }

  /** Whether this node holds the bucket's control plane and follows it (ready, writable). */
  get synced(): boolean {
    return this.#synced;
  }

  /**
   * Waits, `CATCH_UP_MS` at most, until this node has applied every change the bucket held when
   * asked, so that an API request here sees what another node's API answered before it (the
   * watch is otherwise a few milliseconds behind). Nothing to wait for while not synced.
   */
  async caughtUp(): Promise<void> {
    const kv = this.#kv;
    const last = await this.#bucketLast(kv);
    if (last === undefined) return; // not synced, or no answer: the cache answers as it is
    const deadline = Date.now() + CATCH_UP_MS;
    while (this.#seen < last && this.#kv === kv && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 2));
  }

  /** The link is up (again): sync, then follow. */
  linkUp(nc: NatsConnection): void {
    this.linkDown();
    const generation = this.#generation;
    void this.#run(nc, generation);
    this.#watchCheck = setInterval(() => void this.#checkWatch(generation), WATCH_CHECK_MS);
    this.#watchCheck.unref();
  }

  /** The link is down: stop following; the next `linkUp` syncs again. */
  linkDown(): void {
    clearInterval(this.#watchCheck);
    this.#awaited = 0;
    this.#generation++;
    this.#synced = false;
    this.#reconciled = false;
    this.#kv = undefined;
    this.#watch?.stop();
    this.#watch = undefined;
  }

  /**
   * Writes this node's changes to the bucket; resolves once they are written (or refused),
   * with the number of conflicts (changes that lost to another node's). Nothing while not synced.
   * `write` false (a read waiting for the writes before it): changes replaced before they were
   * found are left for the next writer's commit.
   */
  commit(write = true): Promise<number> {
    const run = this.#chain.then(async () => {
      const { conflicts, unavailable } = await this.#push();
      if (unavailable > 0)
        throw new ControlPlaneUnavailable(
          `${unavailable} control-plane record(s) not written: the cluster's bucket did not answer`,
        );
      if (!write || !this.#reconciled) return conflicts;
      const replaced = this.#replaced;
      this.#replaced = 0;
      return conflicts + replaced;
    });
    this.#chain = run.catch(() => 0);
    return run;
  }

  /** Follows the bucket while this link lasts; a watch that ends or fails is started again (a full sync). */
  async #run(nc: NatsConnection, generation: number): Promise<void> {
    while (generation === this.#generation) {
      try {
        await this.#follow(nc, generation);
      } catch (err) {
        if (generation !== this.#generation) return;
        if (!this.#warned)
          this.#log.error(
            { event: 'control_plane_unavailable', err: (err as Error).message },
            `cluster control plane: the JetStream bucket ${CONTROL_BUCKET} is not available (is JetStream enabled on NATS, nats-server -js?); retrying every ${RETRY_MS / 1000} s`,
          );
        this.#warned = true;
      }
      if (generation !== this.#generation) return;
      this.#synced = false;
      this.#reconciled = false;
      this.#watch?.stop();
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
    }
  }

  async #follow(nc: NatsConnection, generation: number): Promise<void> {
    const kv = await openBucket(nc, CONTROL_BUCKET, this.#replicas());
    const empty = (await kv.status()).values === 0;
    const watch = await kv.watch();
    if (generation !== this.#generation) {
      watch.stop();
      return;
    }
    this.#kv = kv;
    this.#watch = watch;
    // Counted afresh per watch: a bucket made again (NATS lost its store) numbers from 1.
    this.#seen = 0;
    this.#awaited = 0;
    const initial = new Map<string, KvWatchEntry>();
    let initialized = false;
    const ready = (): void => {
      initialized = true;
      this.#reconcile(initial);
      this.#reconciled = true;
      void this.#seed(nc, generation);
    };
    if (empty) ready();
    for await (const entry of watch) {
      if (generation !== this.#generation) break;
      if (entry.revision > this.#seen) this.#seen = entry.revision;
      if (initialized) this.#onEntry(entry);
      else {
        initial.set(entry.key, entry);
        if (entry.isUpdate) ready();
      }
    }
  }

  /** The bucket's last sequence while synced; undefined otherwise or when it does not answer. */
  async #bucketLast(kv: KV | undefined): Promise<number | undefined> {
    if (kv === undefined || !this.#synced) return undefined;
    try {
      return (await kv.status()).streamInfo.state.last_seq;
    } catch {
      return undefined;
    }
  }

  /** Restarts a watch that has not brought what the bucket held at the previous check. */
  async #checkWatch(generation: number): Promise<void> {
    const last = await this.#bucketLast(this.#kv);
    // No answer now (the stream electing a leader): the next check asks again.
    if (last === undefined || generation !== this.#generation) return;
    if (this.#awaited > 0 && this.#seen < this.#awaited) {
      this.#log.warn(
        { event: 'control_plane_watch_stalled', seen: this.#seen, bucket: this.#awaited },
        `cluster control plane: the watch of ${CONTROL_BUCKET} stopped bringing changes (its NATS server gone?); syncing again`,
      );
      this.#awaited = 0;
      this.#watchRestarts++;
      this.#watch?.stop();
      return;
    }
    this.#awaited = last > this.#seen ? last : 0;
  }

  /** The bucket's last values are all in: make the cache theirs (the bucket wins). */
  #reconcile(bucket: Map<string, KvWatchEntry>): void {
    const local = this.#replica.snapshot();
    this.#known.clear();
    this.#revision.clear();
    this.#unapplied.clear();
    let replaced = 0;
    let removed = 0;
    const entries = [...bucket.values()].sort((x, y) => kindRank(x.key) - kindRank(y.key));
    for (const e of entries.filter((e) => e.operation !== 'PUT').reverse()) {
      this.#revision.set(e.key, e.revision);
      if (!local.has(e.key)) continue;
      removed++;
      this.#apply(e.key, undefined);
    }
    for (const e of entries.filter((e) => e.operation === 'PUT')) {
      this.#revision.set(e.key, e.revision);
      const value = e.string();
      this.#known.set(e.key, value);
      const mine = local.get(e.key);
      if (mine === value) continue;
      if (mine !== undefined) replaced++;
      this.#apply(e.key, value);
    }
    this.#log.info(
      { event: 'control_plane_synced', records: this.#known.size, replaced, removed },
      `cluster control plane synced: ${this.#known.size} records, ${replaced} replaced and ${removed} removed here`,
    );
  }

  /** Writes what only this node had (a first join), then says the node is ready. */
  async #seed(nc: NatsConnection, generation: number): Promise<void> {
    let conflicts: number;
    try {
      conflicts = await this.commit();
    } catch (err) {
      // The bucket did not take this node's records now: try again while the link lasts.
      this.#log.warn(
        { err: (err as Error).message },
        'cluster control plane: seeding the bucket failed; retrying',
      );
      setTimeout(() => {
        if (generation === this.#generation) void this.#seed(nc, generation);
      }, RETRY_MS).unref();
      return;
    }
    if (generation !== this.#generation) return;
    this.#warned = false;
    this.#synced = true;
    this.#onSynced?.(nc);
    if (conflicts > 0) this.#log.info({ conflicts }, "records of this node gave way to the cluster's");
  }

  /**
   * A change in the bucket after the sync. `afterConflict`: the record that refused a write of
   * this node (already counted); otherwise a change of this node that the record replaces before
   * it was written (the cache holds neither the known record nor the new one) is counted.
   */
  #onEntry(e: KvWatchEntry | KvEntry, afterConflict = false): void {
    const key = e.key;
    if ((this.#revision.get(key) ?? 0) >= e.revision) return; // seen, or written by us
    this.#revision.set(key, e.revision);
    const value = e.operation === 'PUT' ? e.string() : undefined;
    const before = this.#known.get(key);
    if (value === undefined) this.#known.delete(key);
    else this.#known.set(key, value);
    const pushing = this.#pushing.get(key);
    if (pushing !== undefined && pushing === (value ?? null)) return; // our echo
    // A write of this key on its way is refused by this record and counted then.
    if (!afterConflict && pushing === undefined && !this.#unapplied.has(key)) {
      const mine = this.#replica.record(key);
      if (mine !== before && mine !== value) {
        this.#replaced++;
        this.#conflicts++;
        this.#log.warn(
          { event: 'control_plane_conflict', key },
          `cluster control plane: ${key} changed on another node before this node's change was written; the other change wins`,
        );
      }
    }
    this.#apply(key, value);
  }

  #apply(key: string, value: string | undefined): void {
    this.#applied++;
    try {
      this.#replica.apply(key, value);
      this.#unapplied.delete(key);
    } catch (err) {
      this.#unapplied.add(key);
      this.#log.warn({ key, err: (err as Error).message }, 'cluster control-plane record not applied here');
    }
  }

  async #push(): Promise<{ conflicts: number; unavailable: number }> {
    const kv = this.#kv;
    if (kv === undefined || !this.#reconciled) return { conflicts: 0, unavailable: 0 };
    const generation = this.#generation;
    let conflicts = 0;
    let unavailable = 0;
    /**
     * Writes one difference, as a compare-and-set on what this node knew of the key when it
     * found the difference (`base`): a record another node wrote meanwhile (already applied
     * here by the watch) makes the write fail, and the bucket's record stands. Any other failure
     * is tried again after each of `UNAVAILABLE_RETRY_MS`, then counted and undone here.
     */
    const write = async ({ key, value, base }: Difference): Promise<void> => {
      for (let attempt = 0; ; attempt++) {
        if (attempt > 0)
          await new Promise((resolve) => setTimeout(resolve, UNAVAILABLE_RETRY_MS[attempt - 1]));
        if (generation !== this.#generation) return;
        this.#pushing.set(key, value);
        try {
          if (value === null) {
            await kv.delete(key, { previousSeq: base ?? 0 });
            this.#known.delete(key);
          } else {
            const written =
              base === undefined ? await kv.create(key, value) : await kv.update(key, value, base);
            this.#revision.set(key, Math.max(written, this.#revision.get(key) ?? 0));
            if (written > this.#seen) this.#seen = written;
            this.#known.set(key, value);
          }
          return;
        } catch (err) {
          if (generation !== this.#generation) return;
          if (!isRefusal(err)) {
            if (attempt < UNAVAILABLE_RETRY_MS.length) continue;
            unavailable++;
            this.#unavailable++;
            this.#log.warn(
              { event: 'control_plane_unavailable', key, err: (err as Error).message },
              `cluster control plane: ${key} not written (the bucket did not answer); the change is undone here`,
            );
            this.#apply(key, this.#known.get(key));
            return;
          }
          const current = await kv.get(key).catch(() => null);
          // Another node wrote the same (both pruned one expired revocation): no conflict.
          const same = (current?.operation === 'PUT' ? current.string() : null) === value;
          if (!same) {
            conflicts++;
            this.#conflicts++;
            this.#log.warn(
              { event: 'control_plane_conflict', key, err: (err as Error).message },
              `cluster control plane: ${key} changed on another node at the same time; the first change wins`,
            );
          }
          if (current !== null) this.#onEntry(current, true);
          return;
        } finally {
          this.#pushing.delete(key);
        }
      }
    };
    // One kind at a time (deletes children first, then puts parents first), its keys together.
    // A record of another node applied meanwhile (by the watch, or after a conflict) may have
    // changed what this node holds (a parent that gave way takes its local children with it,
    // control-replica.ts): the differences are then found anew, so that no stale record (one
    // naming a parent no node has any more) is written.
    for (const deletes of [true, false]) {
      let applied = -1;
      let differences: Difference[] = [];
      for (let rank = 0; rank <= KEY_KINDS.length; rank++) {
        const kind = deletes ? KEY_KINDS.length - rank : rank;
        if (applied !== this.#applied) {
          applied = this.#applied;
          differences = this.#differences(deletes);
        }
        const group = differences.filter((d) => kindRank(d.key) === kind);
        await Promise.all(group.map(write));
        if (generation !== this.#generation) return { conflicts, unavailable };
      }
    }
    return { conflicts, unavailable };
  }

  /** What this node holds and the bucket does not (puts), or the other way round (deletes). */
  #differences(deletes: boolean): Difference[] {
    const local = this.#replica.snapshot();
    const base = (key: string): number | undefined =>
      this.#known.has(key) ? (this.#revision.get(key) ?? 0) : undefined;
    if (deletes)
      return [...this.#known.keys()]
        .filter((key) => !local.has(key) && !this.#unapplied.has(key))
        .map((key) => ({ key, value: null, base: base(key) }));
    return [...local]
      .filter(([key, value]) => this.#known.get(key) !== value && !this.#unapplied.has(key))
      .map(([key, value]) => ({ key, value, base: base(key) }));
  }
}

/** One record to write to the bucket (value null: delete) and the revision it was found at. */
interface Difference {
  key: string;
  value: string | null;
  /** The key's revision this node knew when it found the difference; undefined: not in the bucket. */
  base: number | undefined;
}
