/**
 * router/: which sessions a PUBLISH goes to. Owns the subscription trie (TopicIndex) with its
 * shared-subscription groups and match cache, and the Message type routed through it.
 * Promises: `$`-topics never match leading wildcards; match results are stable until the
 * index changes; a subscriber appears once per match with all of its matching subscriptions.
 */
export { Message, type PublishOptions } from './message.ts';
export {
  type FilterWatcher,
  type GroupWatcher,
  type MatchedSubscriber,
  type MatchResult,
  SharedGroup,
  TopicIndex,
} from './topic-index.ts';
