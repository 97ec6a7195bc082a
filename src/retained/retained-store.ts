/**
 * Retained messages of one broker, in a trie of topic levels so that a new subscription's
 * filter finds its messages without scanning every topic.
 *
 * - One message per topic; a retained PUBLISH with an empty payload deletes it and is never
 *   stored [MQTT-3.3.1-6], [MQTT-3.3.1-7].
 * - Filter matching follows the subscription rules: `+` is one level, `#` this level and all
 *   below (`a/#` includes `a`), and a leading wildcard never reaches a `$` topic [MQTT-4.7.2-1].
 * - Expired messages are not returned and are removed when met [MQTT-3.3.2-5].
 * - No walk recurses: a topic may have 65,536 levels, deeper than the JS stack, so `matching`
 *   keeps its own stack of (node, level) and the `#` walk a stack of child iterators. Each
 *   visits a node at most once, in the order a recursive walk would (children in insertion
 *   order). `matching` is lazy, so a new subscription's retained messages are sent as the
 *   client takes them without a list of them all (src/session/retained-replay.ts).
 */
import type { Message } from '../router/index.ts';

class RetainedNode {
  children: Map<string, RetainedNode> | undefined;
  message: Message | undefined;
}

export class RetainedStore {
  #root = new RetainedNode();
  #count = 0;
  #bytes = 0;

  get size(): number {
    return this.#count;
  }

  /** Bytes held: each message's topic, properties and payload (Message.heldBytes). */
  get bytes(): number {
    return this.#bytes;
  }

  /** Drops every retained message (the broker is deleted). */
  clear(): void {
    this.#root = new RetainedNode();
    this.#count = 0;
    this.#bytes = 0;
  }

  /** Stores (detached) or, for an empty payload, deletes the topic's retained message. */
  apply(message: Message): void {
    if (message.payload.length === 0) {
      this.delete(message.topic);
      return;
    }
    let node = this.#root;
    for (const level of message.topic.split('/')) {
      let next = node.children?.get(level);
      if (next === undefined) {
        next = new RetainedNode();
        (node.children ??= new Map()).set(level, next);
      }
      node = next;
    }
    if (node.message === undefined) this.#count++;
    else this.#bytes -= node.message.heldBytes;
    node.message = message.detach();
    this.#bytes += message.heldBytes;
  }

  get(topic: string): Message | undefined {
    let node: RetainedNode | undefined = this.#root;
    for (const level of topic.split('/')) {
      node = node.children?.get(level);
      if (node === undefined) return undefined;
    }
    return node.message;
  }

  delete(topic: string): boolean {
    const levels = topic.split('/');
    const path: RetainedNode[] = [this.#root];
    for (const level of levels) {
      const next = path[path.length - 1]!.children?.get(level);
      if (next === undefined) return false;
      path.push(next);
    }
    const node = path[path.length - 1]!;
    if (node.message === undefined) return false;
    this.#bytes -= node.message.heldBytes;
    node.message = undefined;
    this.#count--;
    for (let i = path.length - 1; i > 0; i--) {
      const n = path[i]!;
      if (n.message !== undefined || (n.children !== undefined && n.children.size > 0)) break;
      path[i - 1]!.children!.delete(levels[i - 1]!);
    }
    return true;
  }

  /** Retained messages whose topic matches `filter` (a valid, non-shared filter). */
  match(filter: string, now = Date.now()): Message[] {
    return [...this.live(filter, () => now)];
  }

  /**
   * `matching` without the expired messages, which are removed as they are met
   * [MQTT-3.3.2-5] (safe mid-walk: see `matching`); `clock` is read for each message, so a walk
   * paused for a while judges each message when it gets there.
   */
  *live(filter: string, clock: () => number = Date.now): Generator<Message, void, undefined> {
    for (const m of this.matching(filter)) {
      if (m.expired(clock())) this.delete(m.topic);
      else yield m;
    }
  }

  /**
   * One page of the live messages matching `filter` (a valid, non-shared filter), in `match`'s
   * order: up to `limit` after the first `skip`, and whether more follow. Read-only (expired
   * messages are passed over, not removed), and the walk stops at the `skip + limit + 1`th
   * match: a page never costs a walk of every message the filter matches.
   */
  page(
    filter: string,
    skip: number,
    limit: number,
    now = Date.now(),
  ): { messages: Message[]; more: boolean } {
    const messages: Message[] = [];
    let seen = 0;
    for (const m of this.matching(filter)) {
      if (m.expired(now) || seen++ < skip) continue;
      if (messages.length === limit) return { messages, more: true };
      messages.push(m);
    }
    return { messages, more: false };
  }

  /**
   * The messages whose topic matches `filter` (a valid, non-shared filter), expired ones
   * included, walked lazily: depth first over the nodes the filter's levels lead to, children
   * pushed last-first to pop in order. A paused walk may be resumed after the store changed:
   * Map iterators follow insertions and deletions, and a deleted topic's node no longer holds
   * its message; a topic stored meanwhile is met or not depending on where the walk is.
   */
  *matching(filter: string): Generator<Message, void, undefined> {
    const levels = filter.split('/');
    const nodes: RetainedNode[] = [this.#root];
    const depths: number[] = [0];
    while (nodes.length > 0) {
      const node = nodes.pop()!;
      const i = depths.pop()!;
      if (i === levels.length) {
        if (node.message !== undefined) yield node.message;
        continue;
      }
      const level = levels[i]!;
      if (level === '#') {
        // The parent level too [MQTT-4.7.1-2].
        if (node.message !== undefined && i > 0) yield node.message;
        yield* this.#all(node, i === 0);
        continue;
      }
      if (node.children === undefined) continue;
      if (level === '+') {
        const children = [...node.children];
        for (let c = children.length - 1; c >= 0; c--) {
          const [name, child] = children[c]!;
          if (i === 0 && name.startsWith('$')) continue; // [MQTT-4.7.2-1]
          nodes.push(child);
          depths.push(i + 1);
        }
        continue;
      }
      const child = node.children.get(level);
      if (child !== undefined) {
        nodes.push(child);
        depths.push(i + 1);
      }
    }
  }

  /** Every message held, `$` topics included, expired ones too (cluster/retained-sync.ts). */
  every(): Generator<Message, void, undefined> {
    return this.#all(this.#root, false);
  }

  /** Every message strictly below `node` (skipping `$` topics when at the root), in preorder. */
  *#all(node: RetainedNode, atRoot: boolean): Generator<Message, void, undefined> {
    if (node.children === undefined) return;
    const stack = [node.children.entries()];
    while (stack.length > 0) {
      const next = stack[stack.length - 1]!.next();
      if (next.done === true) {
        stack.pop();
        continue;
      }
      const [name, child] = next.value;
      if (atRoot && stack.length === 1 && name.startsWith('$')) continue; // [MQTT-4.7.2-1]
      if (child.message !== undefined) yield child.message;
      if (child.children !== undefined) stack.push(child.children.entries());
    }
  }
}
