/**
 * retained/: retained messages per broker. Owns their topic trie and its matching of new
 * subscriptions' filters. Promises: one message per topic, empty payload deletes, `$` topics
 * unreachable by leading wildcards, expired messages never returned.
 */
export { RetainedStore } from './retained-store.ts';
