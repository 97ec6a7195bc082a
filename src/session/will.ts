/**
 * Will messages (section 3.1.2.5): what happens to a connection's will when it closes without
 * a normal DISCONNECT. Published at once, or after the v5 Will Delay Interval, whichever of
 * that delay and the session's end comes first [MQTT-3.1.3-9], [MQTT-3.1.2-8]; a session
 * resumed within the delay cancels it (Session.attach).
 */
import type { Properties, WillMessage } from '../protocol/index.ts';
import { Message } from '../router/index.ts';
import type { SessionHost } from './host.ts';
import type { Session } from './session.ts';

export function releaseWill(
  will: WillMessage,
  publisher: { readonly clientId: string; readonly version: number },
  session: Session,
  broker: SessionHost,
): void {
  const message = new Message({
    topic: will.topic,
    payload: will.payload,
    qos: will.qos,
    retain: will.retain,
    properties: forwardable(will.properties),
    senderId: publisher.clientId,
    messageExpiryInterval: will.properties?.messageExpiryInterval,
  });
  const delay = publisher.version === 5 ? (will.properties?.willDelayInterval ?? 0) : 0;
  if (delay > 0 && session.expiryInterval > 0) {
    session.delayWill(message.detach(), Math.min(delay, session.expiryInterval));
  } else {
    broker.publish(message);
  }
}

/** Will properties a subscriber receives: all but the delay and the expiry (re-computed). */
function forwardable(props: Properties | undefined): Properties | undefined {
  if (props === undefined) return undefined;
  const { willDelayInterval: _delay, messageExpiryInterval: _expiry, ...rest } = props;
  return Object.keys(rest).length === 0 ? undefined : rest;
}
