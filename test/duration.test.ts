/**
 * The `--expiration` parser: wrangler's forms (bare seconds, one number and a unit) with sane
 * month/year constants, sums of parts, whole seconds only, wrangler's error message; and the
 * formatter that shows expirations back to humans in a form the parser reads.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DurationError, formatDuration, parseHumanDuration } from '../src/duration.ts';

describe('parseHumanDuration', () => {
  it('reads a bare number as seconds', () => {
    assert.equal(parseHumanDuration('0'), 0);
    assert.equal(parseHumanDuration('90'), 90);
    assert.equal(parseHumanDuration(' 3600 '), 3600);
  });

  it('reads every unit wrangler accepts, short and long, in any case', () => {
    const cases: [string, number][] = [
      ['30s', 30],
      ['30 seconds', 30],
      ['5m', 300],
      ['5 min', 300],
      ['2h', 7200],
      ['2 HOURS', 7200],
      ['1d', 86_400],
      ['3 days', 259_200],
      ['1w', 604_800],
      ['2weeks', 1_209_600],
      ['1mo', 2_592_000],
      ['1month', 2_592_000],
      ['2 months', 5_184_000],
      ['1y', 31_536_000],
      ['1year', 31_536_000],
      ['1Yr', 31_536_000],
    ];
    for (const [input, seconds] of cases) assert.equal(parseHumanDuration(input), seconds, input);
  });

  it('uses a 30-day month and a 365-day year, not wrangler constants', () => {
    assert.equal(parseHumanDuration('1month'), 30 * 86_400);
    assert.equal(parseHumanDuration('1year'), 365 * 86_400);
    assert.notEqual(parseHumanDuration('1month'), 18_144_000);
    assert.notEqual(parseHumanDuration('1year'), 220_752_000);
  });

  it('adds parts and accepts fractions that make whole seconds', () => {
    assert.equal(parseHumanDuration('1h30m'), 5400);
    assert.equal(parseHumanDuration('1h 30m 15s'), 5415);
    assert.equal(parseHumanDuration('1.5h'), 5400);
    assert.equal(parseHumanDuration('.5m'), 30);
    assert.equal(parseHumanDuration('0.1h'), 360);
  });

  it('refuses what is not a duration with wrangler message', () => {
    for (const input of ['', '   ', 'soon', '5x', '-5m', '1e3', 'h', '1h30', '30 1h', '1..5h', '5m!']) {
      assert.throws(
        () => parseHumanDuration(input),
        (err: unknown) => err instanceof DurationError && /is not a time duration/.test(err.message),
        JSON.stringify(input),
      );
    }
    assert.throws(() => parseHumanDuration('5x'), { message: '5x is not a time duration: unknown unit "x"' });
  });

  it('refuses durations that are not whole seconds or too long to represent', () => {
    assert.throws(() => parseHumanDuration('0.5s'), /not a whole number of seconds/);
    assert.throws(() => parseHumanDuration('1.0000001m'), /not a whole number of seconds/);
    assert.throws(() => parseHumanDuration('99999999999999y'), /too long/);
  });
});

describe('formatDuration', () => {
  it('shows the shortest exact form', () => {
    assert.equal(formatDuration(0), '0s');
    assert.equal(formatDuration(59), '59s');
    assert.equal(formatDuration(3600), '1h');
    assert.equal(formatDuration(5400), '1h30m');
    assert.equal(formatDuration(86_400 + 1), '1d1s');
    assert.equal(formatDuration(14 * 86_400), '2w');
    assert.equal(formatDuration(30 * 86_400), '1mo');
    assert.equal(formatDuration(365 * 86_400), '1y');
  });

  it('round-trips through parseHumanDuration', () => {
    for (const seconds of [
      0, 1, 61, 3599, 5400, 90_061, 604_801, 2_592_000, 31_536_000, 40_000_000, 123_456_789,
    ])
      assert.equal(parseHumanDuration(formatDuration(seconds)), seconds, String(seconds));
  });
});
