/**
 * The limiter's own rules (src/auth/failure-limiter.ts), on a fake clock: IPv6 counted by /64,
 * windows and bans that end, and memory bounded however many addresses fail.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FailureLimiter, sourceKey } from '../../src/auth/failure-limiter.ts';

const limits = { limit: 4, windowMs: 1000, banMs: 5000, delayMs: 10 };

describe('FailureLimiter', () => {
  it('counts IPv6 by /64 and IPv4-mapped addresses as IPv4', () => {
    assert.equal(sourceKey('2001:db8:1:2:aaaa::1'), sourceKey('2001:db8:1:2:bbbb:cccc:dddd:eeee'));
    assert.notEqual(sourceKey('2001:db8:1:2::1'), sourceKey('2001:db8:1:3::1'));
    assert.equal(sourceKey('2001:0db8:0001:0002::1'), '2001:db8:1:2::/64');
    assert.equal(sourceKey('::1'), '0:0:0:0::/64');
    assert.equal(sourceKey('::ffff:10.0.0.1'), '10.0.0.1');
    assert.equal(sourceKey('10.0.0.1'), '10.0.0.1');
  });

  it('delays from half the limit, bans at the limit, and lets the ban and the window end', () => {
    let now = 0;
    const limiter = new FailureLimiter(limits, () => now);
    assert.deepEqual(limiter.recordFailure('2001:db8::1', 'mqtt'), { delayMs: 0, banned: false });
    assert.deepEqual(limiter.recordFailure('2001:db8::2', 'mqtt'), { delayMs: 0, banned: false });
    assert.deepEqual(limiter.recordFailure('2001:db8::3', 'api'), { delayMs: 10, banned: false });
    assert.deepEqual(limiter.recordFailure('2001:db8::4', 'api'), { delayMs: 0, banned: true });
    assert.deepEqual(limiter.check('2001:db8::99', 'mqtt'), { banned: true, retryAfterMs: 5000 });
    assert.deepEqual(limiter.check('2001:db9::1', 'mqtt'), { banned: false });
    now = 5000;
    assert.deepEqual(limiter.check('2001:db8::1', 'mqtt'), { banned: false });
    // A window that ended starts the count again.
    limiter.recordFailure('10.0.0.1', 'mqtt');
    limiter.recordFailure('10.0.0.1', 'mqtt');
    now += 1000;
    assert.deepEqual(limiter.recordFailure('10.0.0.1', 'mqtt'), { delayMs: 0, banned: false });
  });

  it('keeps at most maxTracked addresses, and none once their windows end', () => {
    let now = 0;
    const limiter = new FailureLimiter(limits, () => now, 100);
    for (let i = 0; i < 10_000; i++)
      limiter.recordFailure(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`, 'mqtt');
    assert.equal(limiter.tracked, 100);
    now = 10_000;
    limiter.recordFailure('192.0.2.1', 'mqtt');
    assert.equal(limiter.tracked, 1);
  });

  it('limit 0 is off: nothing is kept, nothing refused', () => {
    const limiter = new FailureLimiter({ ...limits, limit: 0 });
    for (let i = 0; i < 100; i++)
      assert.deepEqual(limiter.recordFailure('10.0.0.1', 'api'), { delayMs: 0, banned: false });
    assert.deepEqual(limiter.check('10.0.0.1', 'api'), { banned: false });
    assert.equal(limiter.tracked, 0);
    assert.equal(limiter.counts.api.failures, 100);
  });
});
