/** Topic ACL grammar and matching: publish by match, subscribe by coverage, ${clientId}. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { allowsEverything, mayPublish, maySubscribe, parseTopicAcl } from '../../src/auth/index.ts';

describe('topic ACLs', () => {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: ACL rules contain the literal ${clientId} placeholder.
  const acl = parseTopicAcl(['pub:devices/${clientId}/#', 'sub:commands/+/${clientId}', 'status/#']);

  for (const [topic, allowed] of [
    ['devices/d1/temp', true],
    ['devices/d1', true],
    ['devices/d2/temp', false],
    ['status/door', true],
    ['commands/x/d1', false],
    ['$SYS/x', false],
  ] as const)
    it(`publish ${topic}: ${allowed ? 'allowed' : 'refused'}`, () => {
      assert.equal(mayPublish(acl, topic, 'd1'), allowed);
    });

  for (const [filter, allowed] of [
    ['commands/a/d1', true],
    ['commands/+/d1', true],
    ['commands/#', false],
    ['commands/a/d2', false],
    ['status/#', true],
    ['status/+/x', true],
    ['devices/d1/#', false],
    ['#', false],
  ] as const)
    it(`subscribe ${filter}: ${allowed ? 'allowed' : 'refused'}`, () => {
      assert.equal(maySubscribe(acl, filter, 'd1'), allowed);
    });

  it('a lone "#" (Cloudflare) allows everything, $ topics included', () => {
    const all = parseTopicAcl('#');
    assert.ok(allowsEverything(all));
    assert.ok(mayPublish(all, '$SYS/x', 'c') && maySubscribe(all, 'a/+/#', 'c'));
    assert.ok(!allowsEverything(acl));
    assert.ok(!allowsEverything(parseTopicAcl('pub:#')));
  });

  it('invalid rules are refused with the rule named', () => {
    assert.throws(() => parseTopicAcl(['a/#/b']), /a\/#\/b/);
    assert.throws(() => parseTopicAcl([]), /topicAcl/);
    assert.throws(() => parseTopicAcl([7]), /strings/);
  });
});
