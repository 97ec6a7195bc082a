/**
 * Topic ACLs carried in a token's `topicAcl` claim. Cloudflare only ever had `#` (everything);
 * ours is a list of rules, each `pub:<filter>`, `sub:<filter>` or a bare `<filter>` (both),
 * where `${clientId}` in a filter stands for the connection's client id. A claim is a string
 * (one rule, as Cloudflare's `"#"`) or an array of rules.
 *
 * - PUBLISH to a topic is allowed when some `pub` rule's filter matches the topic.
 * - SUBSCRIBE to a filter is allowed when some `sub` rule's filter covers it: every topic the
 *   requested filter can match is matched by the rule (`a/#` covers `a/b/+`; `a/+` does not
 *   cover `a/#`). For `$share/{group}/{filter}` the inner filter is checked.
 * - Unlike subscription matching, ACL wildcards reach `$` topics: `#` means everything, as
 *   Cloudflare's did.
 */
import { isValidTopicFilter } from '../protocol/index.ts';

export interface AclRule {
  pub: boolean;
  sub: boolean;
  /** Filter levels, with `${clientId}` not yet substituted. */
  levels: string[];
}

export type TopicAcl = readonly AclRule[];

// biome-ignore lint/suspicious/noTemplateCurlyInString: the ACL placeholder is literal text, not a template.
const CLIENT_ID = '${clientId}';

/** Parses and validates rules; throws with the offending rule named. */
export function parseTopicAcl(claim: unknown): TopicAcl {
  const rules = typeof claim === 'string' ? [claim] : claim;
  if (!Array.isArray(rules) || rules.length === 0)
    throw new Error('topicAcl must be a rule or a list of rules');
  return rules.map((raw) => {
    if (typeof raw !== 'string') throw new Error('topicAcl rules must be strings');
    let pub = true;
    let sub = true;
    let filter = raw;
    if (raw.startsWith('pub:')) {
      sub = false;
      filter = raw.slice(4);
    } else if (raw.startsWith('sub:')) {
      pub = false;
      filter = raw.slice(4);
    }
    if (!isValidTopicFilter(filter.replaceAll(CLIENT_ID, 'x')))
      throw new Error(`topicAcl rule ${JSON.stringify(raw)}: not a valid topic filter`);
    return { pub, sub, levels: filter.split('/') };
  });
}

/** The claim value for a list of rule strings: a lone rule stays a string (`"#"`). */
export function topicAclClaim(rules: string[]): string | string[] {
  return rules.length === 1 ? rules[0]! : rules;
}

const level = (l: string, clientId: string): string =>
  l === CLIENT_ID ? clientId : l.replaceAll(CLIENT_ID, clientId);

/** Does the rule filter match the topic? */
function matches(rule: string[], topic: string[], clientId: string): boolean {
  for (let i = 0; i < rule.length; i++) {
    const r = level(rule[i]!, clientId);
    if (r === '#') return true;
    if (i >= topic.length) return false;
    if (r === '+') continue;
    if (r !== topic[i]) return false;
  }
  return rule.length === topic.length;
}

/** Does the rule filter cover every topic the requested filter matches? */
function covers(rule: string[], filter: string[], clientId: string): boolean {
  for (let i = 0; i < rule.length; i++) {
    const r = level(rule[i]!, clientId);
    if (r === '#') return true;
    if (i >= filter.length) return false;
    const f = filter[i]!;
    if (r === '+') {
      if (f === '#') return false;
      continue;
    }
    if (f === '+' || f === '#' || r !== f) return false;
  }
  return rule.length === filter.length;
}

export function mayPublish(acl: TopicAcl, topic: string, clientId: string): boolean {
  const levels = topic.split('/');
  return acl.some((r) => r.pub && matches(r.levels, levels, clientId));
}

/** `filter` is the inner filter for shared subscriptions. */
export function maySubscribe(acl: TopicAcl, filter: string, clientId: string): boolean {
  const levels = filter.split('/');
  return acl.some((r) => r.sub && covers(r.levels, levels, clientId));
}

/** True when a rule is `#` for both: everything allowed, no per-message checks needed. */
export function allowsEverything(acl: TopicAcl): boolean {
  return acl.some((r) => r.pub && r.sub && r.levels.length === 1 && r.levels[0] === '#');
}
