/**
 * Subscription index: a trie over topic levels with explicit wildcard slots.
 *
 * - Each node has `children` (literal levels), a `plus` slot and a `hash` slot; wildcards are
 *   fields of a node, never map keys, so a literal level "+" in a topic cannot collide.
 * - Subscribers hang off the node where their filter ends: `subs` for plain subscriptions,
 *   `groups` for `$share/{name}/...` groups (one member picked per message).
 * - `a/#` matches `a` as well as everything below it [MQTT-4.7.1-2].
 * - Topics starting with `$` are not matched by a leading `+` or `#` [MQTT-4.7.2-1]: the root's
 *   wildcard slots are skipped for them by construction.
 * - `match` results are cached per topic in a bounded map that is flushed whenever the index
 *   changes (the generation counter), so the steady state costs one map lookup per PUBLISH.
 *   Topics over 256 characters are not cached, so the cache holds at most 10,000 × 256 chars.
 *   Results are grouped by subscriber key: a subscriber whose several filters match appears
 *   once, with all of its matching values (the caller merges QoS and subscription ids).
 * - No walk recurses: a topic may have 65,536 levels (65,535 `/`), far deeper than the JS stack,
 *   so `match` keeps its own stack and add/remove walk a loop. A node sits at one depth only, so
 *   a match visits each node at most once: its work is bounded by the trie, whatever the
 *   wildcards. (The broker also refuses topics and filters over `--max-topic-levels`.)
 */

export interface MatchedSubscriber<K, V> {
  key: K;
  /** Every matching subscription of this subscriber (more than one when filters overlap). */
  values: V[];
}

export interface MatchResult<K, V> {
  subscribers: MatchedSubscriber<K, V>[];
  /** Shared groups with a matching filter: deliver to one member of each. */
  groups: SharedGroup<K, V>[];
}

/**
 * Members of one `$share/{name}/{filter}`; `pick` rotates round-robin over them. A member can be
 * marked away (its session has no connection): `connected` counts the others, so a cluster can
 * prefer nodes whose members are connected, as one node prefers its connected members.
 */
export class SharedGroup<K, V> {
  readonly shareName: string;
  readonly filter: string;
  readonly #members = new Map<K, V>();
  /** Member keys in joining order, for the rotation. */
  #order: K[] = [];
  #cursor = 0;
  /** Members marked away (a subset of `#members`). */
  readonly #away = new Set<K>();

  constructor(shareName: string, filter: string) {
    this.shareName = shareName;
    this.filter = filter;
  }

  get size(): number {
    return this.#order.length;
  }

  /** Members not marked away. */
  get connected(): number {
    return this.#order.length - this.#away.size;
  }

  /** Marks a member away or back; true when that changed something. */
  setAway(key: K, away: boolean): boolean {
    if (!this.#members.has(key) || this.#away.has(key) === away) return false;
    if (away) this.#away.add(key);
    else this.#away.delete(key);
    return true;
  }

  has(key: K): boolean {
    return this.#members.has(key);
  }

  /** Adds or replaces a member; true when it is new. */
  set(key: K, value: V): boolean {
    const isNew = !this.#members.has(key);
    this.#members.set(key, value);
    if (isNew) this.#order.push(key);
    return isNew;
  }

  delete(key: K): boolean {
    if (!this.#members.delete(key)) return false;
    this.#away.delete(key);
    const i = this.#order.indexOf(key);
    this.#order.splice(i, 1);
    if (this.#cursor > i) this.#cursor--;
    return true;
  }

  /**
   * The next member in turn, skipping those `eligible` rejects; undefined when none is.
   * With `start` (any non-negative integer, taken modulo the size) the search begins at that
   * member instead and the rotation is left alone: random and hashed picks use it.
   */
  pick(eligible?: (key: K) => boolean, start?: number): [K, V] | undefined {
    const n = this.#order.length;
    const from = start === undefined ? this.#cursor : start % n;
    for (let i = 0; i < n; i++) {
      const at = (from + i) % n;
      const key = this.#order[at]!;
      if (eligible === undefined || eligible(key)) {
        if (start === undefined) this.#cursor = (at + 1) % n;
        return [key, this.#members.get(key)!];
      }
    }
    return undefined;
  }
}

class Node<K, V> {
  children: Map<string, Node<K, V>> | undefined;
  plus: Node<K, V> | undefined;
  hash: Node<K, V> | undefined;
  subs: Map<K, V> | undefined;
  groups: Map<string, SharedGroup<K, V>> | undefined;

  isEmpty(): boolean {
    return (
      (this.children === undefined || this.children.size === 0) &&
      this.plus === undefined &&
      this.hash === undefined &&
      (this.subs === undefined || this.subs.size === 0) &&
      (this.groups === undefined || this.groups.size === 0)
    );
  }
}

/** `present`: the filter has gained its first plain subscriber (true) or lost its last (false). */
export type FilterWatcher = (filter: string, present: boolean) => void;

/**
 * The group `$share/{shareName}/{filter}` has `members` members now (0: it is gone), `connected`
 * of them not marked away.
 */
export type GroupWatcher = (shareName: string, filter: string, members: number, connected: number) => void;

export interface TopicIndexOptions {
  /** Topics whose match results are cached (0 disables the cache). */
  cacheSize?: number;
}

const EMPTY_RESULT: MatchResult<never, never> = Object.freeze({ subscribers: [], groups: [] }) as MatchResult<
  never,
  never
>;

/** Topics longer than this (in UTF-16 units) are matched afresh each time. */
const MAX_CACHED_TOPIC_LENGTH = 256;

export class TopicIndex<K, V> {
  #root = new Node<K, V>();
  #cache = new Map<string, MatchResult<K, V>>();
  #cacheSize: number;
  #generation = 0;
  #count = 0;
  #groupCount = 0;
  /** Told when a plain filter gains its first subscriber or loses its last (`watch`). */
  #watcher: FilterWatcher | undefined;
  /** Told when a shared group gains or loses a member (`watchGroups`). */
  #groupWatcher: GroupWatcher | undefined;
  /** The match walk's stack (nodes and their depths), kept between calls: a walk allocates none. */
  readonly #stackNodes: Node<K, V>[] = [];
  readonly #stackDepths: number[] = [];

  constructor(options: TopicIndexOptions = {}) {
    this.#cacheSize = options.cacheSize ?? 10_000;
  }

  /** Shared groups with members (a `$share` filter and name), whatever their filters. */
  get groupCount(): number {
    return this.#groupCount;
  }

  /** Number of (filter, subscriber) entries, shared members included. */
  get size(): number {
    return this.#count;
  }

  /**
   * Whether some filter (plain or shared) starts with the literal level `level`: nodes are pruned
   * when their last filter goes, so this is one map lookup. The $SYS tree asks it before doing
   * any work for a broker (a `$` level is reached by no wildcard [MQTT-4.7.2-1]).
   */
  hasFirstLevel(level: string): boolean {
    return this.#root.children?.has(level) === true;
  }

  /** Bumped by every change; cached match results from an older generation are gone. */
  get generation(): number {
    return this.#generation;
  }

  /**
   * Sets (or, with undefined, clears) the one watcher told when a plain filter gains its first
   * subscriber or loses its last: the cluster's interest (src/cluster). Shared groups are not
   * reported. Only subscribe and unsubscribe pay for it, never `match`.
   */
  watch(watcher: FilterWatcher | undefined): void {
    this.#watcher = watcher;
  }

  /**
   * Sets (or clears) the one watcher told of every member a shared group gains or loses: the
   * cluster's share-group membership (src/cluster/shared-groups.ts). Never paid by `match`.
   */
  watchGroups(watcher: GroupWatcher | undefined): void {
    this.#groupWatcher = watcher;
  }

  /** Every shared group with members now (a walk of the trie, on a stack). */
  groups(): SharedGroup<K, V>[] {
    const out: SharedGroup<K, V>[] = [];
    const stack: Node<K, V>[] = [this.#root];
    while (stack.length > 0) {
      const node = stack.pop()!;
      if (node.groups !== undefined) for (const g of node.groups.values()) out.push(g);
      if (node.children !== undefined) for (const child of node.children.values()) stack.push(child);
      if (node.plus !== undefined) stack.push(node.plus);
      if (node.hash !== undefined) stack.push(node.hash);
    }
    return out;
  }

  /** Every plain filter that has at least one subscriber now (a walk of the trie, on a stack). */
  filters(): string[] {
    const out: string[] = [];
    const stack: [Node<K, V>, string][] = [[this.#root, '']];
    while (stack.length > 0) {
      const [node, prefix] = stack.pop()!;
      const at = (level: string): string => (node === this.#root ? level : `${prefix}/${level}`);
      if (node !== this.#root && node.subs !== undefined && node.subs.size > 0) out.push(prefix);
      if (node.children !== undefined)
        for (const [level, child] of node.children) stack.push([child, at(level)]);
      if (node.plus !== undefined) stack.push([node.plus, at('+')]);
      if (node.hash !== undefined) stack.push([node.hash, at('#')]);
    }
    return out;
  }

  /** Adds or replaces `key`'s subscription to `filter`. Returns true when it is new. */
  add(filter: string, key: K, value: V): boolean {
    const node = this.#walk(filter, true)!;
    node.subs ??= new Map();
    const isNew = !node.subs.has(key);
    node.subs.set(key, value);
    this.#changed(isNew ? 1 : 0);
    if (isNew && node.subs.size === 1) this.#watcher?.(filter, true);
    return isNew;
  }

  /** Removes `key`'s subscription to `filter`. Returns true when there was one. */
  remove(filter: string, key: K): boolean {
    const path = this.#path(filter);
    if (path === undefined) return false;
    const node = path[path.length - 1]!;
    if (node.subs === undefined || !node.subs.delete(key)) return false;
    const last = node.subs.size === 0;
    this.#prune(filter, path);
    this.#changed(-1);
    if (last) this.#watcher?.(filter, false);
    return true;
  }

  /** Adds or replaces `key` in the group `$share/{shareName}/{filter}`. Returns true when new. */
  /** Adds or replaces a member (`away`: marked away from the start); true when it is new. */
  addShared(shareName: string, filter: string, key: K, value: V, away = false): boolean {
    const node = this.#walk(filter, true)!;
    node.groups ??= new Map();
    let group = node.groups.get(shareName);
    if (group === undefined) {
      group = new SharedGroup(shareName, filter);
      node.groups.set(shareName, group);
      this.#groupCount++;
    }
    const isNew = group.set(key, value);
    const moved = group.setAway(key, away);
    this.#changed(isNew ? 1 : 0);
    if (isNew || moved) this.#groupWatcher?.(shareName, filter, group.size, group.connected);
    return isNew;
  }

  /**
   * Marks a member of `$share/{shareName}/{filter}` away (no connection) or back; the group
   * watcher hears of a change. False when it is no member or already so.
   */
  setSharedAway(shareName: string, filter: string, key: K, away: boolean): boolean {
    const group = this.#walk(filter, false)?.groups?.get(shareName);
    if (group === undefined || !group.setAway(key, away)) return false;
    this.#groupWatcher?.(shareName, filter, group.size, group.connected);
    return true;
  }

  removeShared(shareName: string, filter: string, key: K): boolean {
    const path = this.#path(filter);
    if (path === undefined) return false;
    const node = path[path.length - 1]!;
    const group = node.groups?.get(shareName);
    if (group === undefined || !group.delete(key)) return false;
    if (group.size === 0) {
      node.groups!.delete(shareName);
      this.#groupCount--;
    }
    this.#prune(filter, path);
    this.#changed(-1);
    this.#groupWatcher?.(shareName, filter, group.size, group.connected);
    return true;
  }

  /** Every subscriber and shared group whose filter matches `topic` (a valid topic name). */
  match(topic: string): MatchResult<K, V> {
    const cached = this.#cache.get(topic);
    if (cached !== undefined) return cached;
    const byKey = new Map<K, V[]>();
    const groups: SharedGroup<K, V>[] = [];
    const levels = topic.split('/');
    const dollar = topic.charCodeAt(0) === 36; // '$'
    this.#collect(levels, dollar, byKey, groups);
    let result: MatchResult<K, V>;
    if (byKey.size === 0 && groups.length === 0) {
      result = EMPTY_RESULT;
    } else {
      const subscribers: MatchedSubscriber<K, V>[] = [];
      for (const [key, values] of byKey) subscribers.push({ key, values });
      result = { subscribers, groups };
    }
    // Long topics are not cached: the cache is bounded by count, and count × 64 KiB keys is not a bound.
    if (this.#cacheSize > 0 && topic.length <= MAX_CACHED_TOPIC_LENGTH) {
      if (this.#cache.size >= this.#cacheSize) this.#cache.clear();
      this.#cache.set(topic, result);
    }
    return result;
  }

  /**
   * Depth first from the root, on an explicit stack. At each node: its `#` child matches whatever
   * is left [MQTT-4.7.1-2]; at the topic's end the node itself matches; else the literal child and
   * the `+` child go on the stack (literal on top, so it is walked first, as the recursive walk
   * did). `match` is synchronous and never re-entered, so the stack can be the instance's own.
   */
  #collect(levels: string[], dollar: boolean, byKey: Map<K, V[]>, groups: SharedGroup<K, V>[]): void {
    const nodes = this.#stackNodes;
    const depths = this.#stackDepths;
    nodes.push(this.#root);
    depths.push(0);
    while (nodes.length > 0) {
      const node = nodes.pop()!;
      const i = depths.pop()!;
      const skipWildcards = dollar && i === 0; // [MQTT-4.7.2-1]
      if (node.hash !== undefined && !skipWildcards) this.#take(node.hash, byKey, groups);
      if (i === levels.length) {
        this.#take(node, byKey, groups);
        continue;
      }
      if (node.plus !== undefined && !skipWildcards) {
        nodes.push(node.plus);
        depths.push(i + 1);
      }
      const child = node.children?.get(levels[i]!);
      if (child !== undefined) {
        nodes.push(child);
        depths.push(i + 1);
      }
    }
  }

  #take(node: Node<K, V>, byKey: Map<K, V[]>, groups: SharedGroup<K, V>[]): void {
    if (node.subs !== undefined) {
      for (const [key, value] of node.subs) {
        const values = byKey.get(key);
        if (values === undefined) byKey.set(key, [value]);
        else values.push(value);
      }
    }
    if (node.groups !== undefined) for (const g of node.groups.values()) groups.push(g);
  }

  #walk(filter: string, create: boolean): Node<K, V> | undefined {
    let node = this.#root;
    for (const level of filter.split('/')) {
      let next: Node<K, V> | undefined;
      if (level === '+') {
        next = node.plus ?? (create ? (node.plus = new Node()) : undefined);
      } else if (level === '#') {
        next = node.hash ?? (create ? (node.hash = new Node()) : undefined);
      } else {
        next = node.children?.get(level);
        if (next === undefined && create) {
          next = new Node();
          (node.children ??= new Map()).set(level, next);
        }
      }
      if (next === undefined) return undefined;
      node = next;
    }
    return node;
  }

  /** The nodes from the root to the filter's node, or undefined when the filter has none. */
  #path(filter: string): Node<K, V>[] | undefined {
    const path: Node<K, V>[] = [this.#root];
    let node = this.#root;
    for (const level of filter.split('/')) {
      const next = level === '+' ? node.plus : level === '#' ? node.hash : node.children?.get(level);
      if (next === undefined) return undefined;
      path.push(next);
      node = next;
    }
    return path;
  }

  /** Unlinks nodes left empty by a removal, deepest first. */
  #prune(filter: string, path: Node<K, V>[]): void {
    const levels = filter.split('/');
    for (let i = path.length - 1; i > 0; i--) {
      const node = path[i]!;
      if (!node.isEmpty()) return;
      const parent = path[i - 1]!;
      const level = levels[i - 1]!;
      if (level === '+') parent.plus = undefined;
      else if (level === '#') parent.hash = undefined;
      else parent.children!.delete(level);
    }
  }

  #changed(delta: number): void {
    this.#count += delta;
    this.#generation++;
    if (this.#cache.size > 0) this.#cache.clear();
  }
}
