/**
 * UNSUBSCRIBE → UNSUBACK, one reason per filter in order [MQTT-3.10.4-5] (v5: 0x11 when none
 * existed). Each filter is checked as SUBSCRIBE checks it (`filterShare`): an invalid one (empty
 * [MQTT-4.7.3-1], a misplaced `#` or `+` [MQTT-4.7.1-1]) fails alone in v5 with 0x8F Topic
 * Filter invalid, as in SUBACK; a v3 UNSUBACK has no per-filter code, so a v3 client that sends
 * one has broken the protocol and its connection is closed [MQTT-4.8.0-1].
 */
import { ReasonCode, type UnsubscribePacket } from '../../protocol/index.ts';
import { clientUnsubscribed } from '../client-events.ts';
import type { PacketContext } from '../handler-context.ts';
import { filterShare } from '../session-outcomes.ts';

export function handleUnsubscribe(conn: PacketContext, packet: UnsubscribePacket): void {
  const session = conn.session!;
  const filters = packet.topicFilters;
  const invalid = filters.map((filter) => filterShare(filter) === null);
  const problem = (i: number) => `invalid topic filter ${JSON.stringify(filters[i]!.slice(0, 64))}`;
  // v3: nothing of the packet is done, the connection closes.
  if (conn.version !== 5 && invalid.includes(true)) {
    return conn.disconnect('TOPIC_FILTER_INVALID', problem(invalid.indexOf(true)));
  }
  const reasonCodes: number[] = [];
  const problems: string[] = [];
  for (let i = 0; i < filters.length; i++) {
    if (invalid[i]) {
      reasonCodes.push(ReasonCode.TopicFilterInvalid);
      problems.push(problem(i));
    } else {
      reasonCodes.push(
        session.unsubscribe(filters[i]!) ? ReasonCode.Success : ReasonCode.NoSubscriptionExisted,
      );
    }
  }
  const unsuback = { type: 'unsuback' as const, packetId: packet.packetId, reasonCodes };
  if (problems.length > 0) conn.sendWithReason(unsuback, problems.join('; '));
  else conn.send(unsuback);
  clientUnsubscribed(conn, filters, reasonCodes);
}
