/**
 * WriteTickets (src/cluster/write-tickets.ts): settled out of order, waited for in order; a
 * waiter hears of its own write's failure (the last ticket before it), a ticket outstanding past
 * the timeout fails.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WriteTickets } from '../../src/cluster/write-tickets.ts';

const fail = new Error('not taken');

test('a waiter runs once every ticket before it is settled, in call order', () => {
  const tickets = new WriteTickets(10_000, (err) => assert.fail(String(err)));
  const order: string[] = [];
  const a = tickets.take();
  tickets.whenConfirmed((e) => order.push(`first ${e?.message ?? 'ok'}`));
  const b = tickets.take();
  tickets.whenConfirmed((e) => order.push(`second ${e?.message ?? 'ok'}`));
  assert.equal(tickets.pending, true);
  tickets.settle([b]);
  assert.equal(order.length, 0, 'the first ticket is still outstanding');
  tickets.settle([a]);
  assert.deepEqual(order, ['first ok', 'second ok']);
  assert.equal(tickets.pending, false);
  tickets.whenConfirmed(() => order.push('at once'));
  assert.equal(order.length, 3, 'at once, nothing outstanding');
});

test("a waiter hears of its own write's failure, not of an earlier one's", () => {
  const tickets = new WriteTickets(10_000, (err) => assert.fail(String(err)));
  const got: (string | undefined)[] = [];
  const a = tickets.take();
  tickets.whenConfirmed((e) => got.push(e?.message));
  const b = tickets.take();
  tickets.whenConfirmed((e) => got.push(e?.message));
  tickets.settle([a], fail);
  tickets.settle([b]);
  assert.deepEqual(got, ['not taken', undefined]);
});

test('a ticket outstanding past the timeout fails', () => {
  const tickets = new WriteTickets(1000, (err) => assert.fail(String(err)));
  const got: (string | undefined)[] = [];
  tickets.take(0);
  tickets.whenConfirmed((e) => got.push(e?.message));
  tickets.expire(900, fail);
  assert.deepEqual(got, []);
  tickets.expire(1001, fail);
  assert.deepEqual(got, ['not taken']);
  assert.equal(tickets.pending, false);
});
