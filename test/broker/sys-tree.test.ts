/**
 * The $SYS tree's arithmetic (src/broker/sys-tree.ts) on a broker's figures set by hand, with
 * the clock given: mosquitto's load averages, values published only when their text changes,
 * and what is routed live versus only retained. The end-to-end behaviour with real clients is
 * test/interop/sys-tree.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type SysSource, SysTree } from '../../src/broker/sys-tree.ts';
import type { Message } from '../../src/router/index.ts';
import { newBrokerStats } from '../../src/session/index.ts';

const T0 = 1_000_000;

function source(): SysSource & { routed: Message[] } {
  const routed: Message[] = [];
  return {
    stats: newBrokerStats(),
    sessions: new Map(),
    index: { size: 0 },
    retained: { size: 0 },
    route: (m: Message) => routed.push(m),
    routed,
  };
}

const shown = (tree: SysTree, name: string): string | undefined =>
  tree.retained.get(`$SYS/broker/${name}`)?.payload.toString();

describe('SysTree', () => {
  it("load averages follow mosquitto's formula: L = r + e^(-dt/T) (L - r), r per minute", () => {
    const s = source();
    const tree = new SysTree(s, T0);
    s.stats.received[0] = 60; // 60 messages in the first 60 s: r = 60 per minute
    tree.refresh(T0 + 60_000, true);
    const after1 = 60 * (1 - Math.exp(-1));
    assert.equal(shown(tree, 'load/messages/received/1min'), after1.toFixed(2));
    assert.equal(shown(tree, 'load/messages/received/5min'), (60 * (1 - Math.exp(-60 / 300))).toFixed(2));
    assert.equal(shown(tree, 'load/messages/received/15min'), (60 * (1 - Math.exp(-60 / 900))).toFixed(2));
    // No message for the next 30 s: r = 0, the average decays.
    tree.refresh(T0 + 90_000, true);
    assert.equal(shown(tree, 'load/messages/received/1min'), (after1 * Math.exp(-0.5)).toFixed(2));
    assert.equal(shown(tree, 'messages/received'), '60');
    assert.equal(shown(tree, 'uptime'), '90 seconds');
  });

  it('publishes a value only when its text changed; without route it only retains', () => {
    const s = source();
    const tree = new SysTree(s, T0);
    tree.refresh(T0 + 1000, false);
    assert.equal(s.routed.length, 0, 'not routed');
    assert.ok(tree.retained.size > 20);
    assert.ok(tree.retained.get('$SYS/broker/version')!.retain);
    tree.refresh(T0 + 2000, true);
    assert.deepEqual(
      s.routed.map((m) => m.topic),
      ['$SYS/broker/uptime'],
      'only uptime changed; the loads stayed 0.00',
    );
    s.stats.bytesSent = 500;
    (s.index as { size: number }).size = 3;
    tree.refresh(T0 + 3000, true);
    const changed = s.routed.slice(1).map((m) => m.topic);
    assert.ok(changed.includes('$SYS/broker/bytes/sent'));
    assert.ok(changed.includes('$SYS/broker/subscriptions/count'));
    assert.ok(changed.includes('$SYS/broker/load/bytes/sent/1min'));
    assert.ok(!changed.includes('$SYS/broker/version'));
    assert.equal(s.routed[1]!.qos, 0);
  });
});
