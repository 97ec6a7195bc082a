/**
 * Outbound topic aliases of one v5 connection (section 3.3.2.3.4): topic → alias number, at
 * most `maximum` of them, where maximum ≤ the client's Topic Alias Maximum [MQTT-3.1.2-26],
 * [MQTT-3.3.2-11]. When every number is taken, the least recently used topic gives up its
 * number. The first PUBLISH for a topic carries topic and alias (the client learns it); later
 * ones carry the alias and an empty topic.
 *
 * `lookup` only proposes; `commit` records once the PUBLISH was actually written (one refused
 * for the client's Maximum Packet Size must not teach the client a mapping it never saw).
 * The Map's insertion order is the recency order.
 */
export interface AliasChoice {
  alias: number;
  /** True when the client already knows this alias for this topic: send an empty topic. */
  known: boolean;
}

export class OutboundTopicAliases {
  readonly maximum: number;
  readonly #byTopic = new Map<string, number>();

  constructor(maximum: number) {
    this.maximum = maximum;
  }

  lookup(topic: string): AliasChoice {
    const alias = this.#byTopic.get(topic);
    if (alias !== undefined) return { alias, known: true };
    if (this.#byTopic.size < this.maximum) return { alias: this.#byTopic.size + 1, known: false };
    // Reuse the number of the least recently used topic.
    return { alias: this.#byTopic.values().next().value!, known: false };
  }

  commit(topic: string, choice: AliasChoice): void {
    if (choice.known) {
      this.#byTopic.delete(topic); // refresh recency
      this.#byTopic.set(topic, choice.alias);
      return;
    }
    if (this.#byTopic.size >= this.maximum) {
      const oldest = this.#byTopic.keys().next().value!;
      this.#byTopic.delete(oldest);
    }
    this.#byTopic.set(topic, choice.alias);
  }
}
