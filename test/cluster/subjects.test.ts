/**
 * MQTT topics and filters as NATS subjects (src/cluster/subjects.ts): every legal level becomes
 * a legal NATS token, one-to-one, and filters map onto NATS wildcards (`+` → `*`, `#` → `>`
 * plus the parent).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { escapeLevel, filterSubjects, topicSubject, unescapeLevel } from '../../src/cluster/subjects.ts';

const TRICKY = [
  '',
  '.',
  '*',
  '>',
  'a.b',
  'sp ace',
  'tab\there',
  '$SYS',
  '~',
  '~2E',
  '~~',
  'ü日本',
  '😀',
  'plain-Level_9',
];
/** A NATS token: non-empty, no `.`, `*`, `>` or white space. */
const TOKEN = /^[^\s.*>]+$/;

test('every level escapes to a NATS token and back', () => {
  for (const level of TRICKY) {
    const token = escapeLevel(level);
    assert.match(token, TOKEN, `${JSON.stringify(level)} → ${token}`);
    assert.equal(unescapeLevel(token), level);
  }
});

test('the escaping is one-to-one: distinct levels give distinct tokens', () => {
  const tokens = TRICKY.map(escapeLevel);
  assert.equal(new Set(tokens).size, TRICKY.length, tokens.join(' '));
});

test('plain levels are kept as they are', () => {
  assert.equal(escapeLevel('sensors'), 'sensors');
  assert.equal(topicSubject('p', 'a/b/c'), 'p.a.b.c');
});

test('a topic with empty levels, dots and wildcard characters has a subject of its own', () => {
  assert.equal(topicSubject('p', 'a//b'), 'p.a.~.b');
  assert.equal(topicSubject('p', '/'), 'p.~.~');
  assert.equal(topicSubject('p', 'a.b/*/>'), 'p.a~2Eb.~2A.~3E');
  assert.notEqual(topicSubject('p', 'a.b'), topicSubject('p', 'a/b'));
});

test('filters map onto NATS wildcards; a trailing # also subscribes its parent [MQTT-4.7.1-2]', () => {
  assert.deepEqual(filterSubjects('p', 'a/+/c'), ['p.a.*.c']);
  assert.deepEqual(filterSubjects('p', 'a/#'), ['p.a.>', 'p.a']);
  assert.deepEqual(filterSubjects('p', '#'), ['p.>']);
  assert.deepEqual(filterSubjects('p', '+/#'), ['p.*.>', 'p.*']);
  assert.deepEqual(filterSubjects('p', 'a.b/ c'), ['p.a~2Eb.~20c']);
});
