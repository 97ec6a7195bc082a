/**
 * The parser's YIELD (src/protocol/parser.ts): a packet handler stops between packets and
 * `continue` resumes the rest later, in order, without copying it; false keeps its meaning
 * (stop and drop the rest). The read budget of a connection is built on it
 * (src/session/read-budget.ts).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { encode, type Packet, Parser, type ProtocolVersion, YIELD } from '../../src/protocol/index.ts';

const VERSIONS: ProtocolVersion[] = [4, 5];

function publishes(count: number, version: ProtocolVersion, from = 0): Buffer {
  const packets: Buffer[] = [];
  for (let i = from; i < from + count; i++)
    packets.push(
      encode(
        {
          type: 'publish',
          topic: `t/${i}`,
          payload: Buffer.from(`m${i}`),
          qos: 0,
          retain: false,
          dup: false,
        },
        version,
      ),
    );
  return Buffer.concat(packets);
}

const topicOf = (p: Packet): string => (p.type === 'publish' ? p.topic : p.type);

/** A handler that records topics and yields after every `every`th packet. */
function yieldingEvery(every: number): { seen: string[]; handler: (p: Packet) => true | typeof YIELD } {
  const seen: string[] = [];
  return {
    seen,
    handler: (p) => {
      seen.push(topicOf(p));
      return seen.length % every === 0 ? YIELD : true;
    },
  };
}

describe('parser: YIELD and continue', () => {
  for (const version of VERSIONS) {
    test(`v${version}: a yield stops after that packet; continue goes on in order, one batch per call`, () => {
      const parser = new Parser({ protocolVersion: version });
      const { seen, handler } = yieldingEvery(2);
      assert.equal(parser.push(publishes(5, version), handler), null);
      assert.deepEqual(seen, ['t/0', 't/1']);
      assert.equal(parser.yielded, true);
      assert.ok(parser.bufferedBytes > 0, 'the kept input counts as buffered');
      assert.equal(parser.continue(handler), null);
      assert.deepEqual(seen, ['t/0', 't/1', 't/2', 't/3']);
      assert.equal(parser.continue(handler), null);
      assert.deepEqual(seen, ['t/0', 't/1', 't/2', 't/3', 't/4']);
      assert.equal(parser.yielded, false);
      assert.equal(parser.bufferedBytes, 0);
      assert.equal(parser.continue(handler), null, 'continue with nothing kept is a no-op');
      assert.equal(seen.length, 5);
    });
  }

  test('the kept input is a view of the chunk, not a copy: payloads decoded after continue point into it', () => {
    const parser = new Parser();
    const chunk = publishes(3, 4);
    const payloads: Buffer[] = [];
    const handler = (p: Packet): typeof YIELD => {
      if (p.type === 'publish') payloads.push(p.payload);
      return YIELD;
    };
    parser.push(chunk, handler);
    parser.continue(handler);
    parser.continue(handler);
    assert.equal(payloads.length, 3);
    for (const payload of payloads) assert.equal(payload.buffer, chunk.buffer);
  });

  test('a yield on a packet that spanned chunks keeps the rest of the chunk that completed it', () => {
    const parser = new Parser();
    const bytes = publishes(4, 4);
    const { seen, handler } = yieldingEvery(1);
    assert.equal(parser.push(bytes.subarray(0, 3), handler), null);
    assert.deepEqual(seen, [], 'the first packet is incomplete');
    parser.push(bytes.subarray(3), handler);
    assert.deepEqual(seen, ['t/0']);
    assert.equal(parser.yielded, true);
    while (parser.yielded) parser.continue(handler);
    assert.deepEqual(seen, ['t/0', 't/1', 't/2', 't/3']);
  });

  test('a trailing partial packet in the kept input is held by continue and completed by the next push', () => {
    const parser = new Parser();
    const bytes = publishes(3, 5);
    const cut = bytes.length - 2;
    const { seen, handler } = yieldingEvery(1);
    parser.push(bytes.subarray(0, cut), handler);
    parser.continue(handler);
    parser.continue(handler);
    assert.deepEqual(seen, ['t/0', 't/1']);
    assert.equal(parser.yielded, false);
    assert.ok(parser.bufferedBytes > 0);
    parser.push(bytes.subarray(cut), handler);
    assert.deepEqual(seen, ['t/0', 't/1', 't/2']);
  });

  test('a push while input is kept goes behind it', () => {
    const parser = new Parser();
    const { seen, handler } = yieldingEvery(2);
    parser.push(publishes(3, 4), handler);
    assert.deepEqual(seen, ['t/0', 't/1']);
    parser.push(publishes(2, 4, 3), () => {
      seen.push('?');
      return true;
    });
    assert.equal(parser.yielded, false);
    assert.deepEqual(seen, ['t/0', 't/1', '?', '?', '?']);
  });

  test('false still stops and drops the rest: nothing is kept', () => {
    const parser = new Parser();
    const seen: string[] = [];
    parser.push(publishes(3, 4), (p) => {
      seen.push(topicOf(p));
      return false;
    });
    assert.deepEqual(seen, ['t/0']);
    assert.equal(parser.yielded, false);
    assert.equal(parser.bufferedBytes, 0);
  });

  test('malformed input after a yield is reported by continue, and the parser is dead after it', () => {
    const parser = new Parser();
    const { handler } = yieldingEvery(1);
    const bad = Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]); // remaining length over 4 bytes
    parser.push(Buffer.concat([publishes(1, 4), bad]), handler);
    assert.equal(parser.yielded, true);
    const error = parser.continue(handler);
    assert.ok(error !== null);
    assert.equal(parser.yielded, false);
    assert.equal(parser.push(publishes(1, 4), handler), error);
  });
});
