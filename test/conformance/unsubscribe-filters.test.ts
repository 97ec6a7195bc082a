/**
 * UNSUBSCRIBE filters are checked as SUBSCRIBE checks them: an empty filter [MQTT-4.7.3-1] or a
 * misplaced `#`/`+` [MQTT-4.7.1-1] gets UNSUBACK 0x8F Topic Filter invalid for that filter alone
 * in v5 (the others are processed), not 0x11 No subscription existed; a v3.1.1 UNSUBACK has no
 * per-filter code, so the connection is closed [MQTT-4.8.0-1]. Literal bytes.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { harness } from '../helpers/v5-harness.ts';
import { connectV4, connectV5, packet, str, Wire } from '../helpers/wire.ts';

const h = harness('unsub');

const subscribe = (version: 4 | 5, filter: string): number[] =>
  packet(0x82, [0x00, 0x01, ...(version === 5 ? [0x00] : []), ...str(filter), 0x00]);
const unsubscribe = (version: 4 | 5, filters: string[]): number[] =>
  packet(0xa2, [0x00, 0x02, ...(version === 5 ? [0x00] : []), ...filters.flatMap(str)]);

describe('UNSUBSCRIBE filter validation', () => {
  test('v5: an empty filter, a/#/b, a+/b and $share/g (no filter) each get 0x8F; valid filters beside them are processed', async () => {
    const w = new Wire(h.open(5));
    await w.handshake(connectV5(h.uid()));
    w.send(subscribe(5, 'kept/x'));
    assert.equal((await w.frame()).first, 0x90, 'SUBACK');
    w.send(unsubscribe(5, ['kept/x', '', 'a/#/b', 'a+/b', '$share/g', 'never/x']));
    const unsuback = await w.frame();
    assert.equal(unsuback.first, 0xb0, 'UNSUBACK');
    const propertiesLength = unsuback.body[2]!; // a Reason String names the invalid filters
    assert.deepEqual([...unsuback.body.subarray(3 + propertiesLength)], [0x00, 0x8f, 0x8f, 0x8f, 0x8f, 0x11]);
    await w.expectAlive();
  });

  for (const filter of ['', 'a/#/b', 'a/b#', '+a']) {
    test(`v3.1.1: UNSUBSCRIBE with ${JSON.stringify(filter)} closes the connection without UNSUBACK [MQTT-4.8.0-1]`, async () => {
      const w = new Wire(h.open(4));
      await w.handshake(connectV4(h.uid()));
      w.send(subscribe(4, 'kept/y'));
      assert.equal((await w.frame()).first, 0x90, 'SUBACK');
      w.send(unsubscribe(4, ['kept/y', filter]));
      await w.expectSilentClose();
    });
  }
});
