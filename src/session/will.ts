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
  const { message, delay } = willOf(will, publisher, session);
  if (delay > 0) session.delayWill(message.detach(), delay);
  else broker.publish(message);
}

/**
 * A connection's will as the message it publishes, and the seconds it waits first: the v5 Will
 * Delay Interval, bounded by the session's expiry (0: at once; a session that ends with its
 * connection never delays) [MQTT-3.1.3-9], [MQTT-3.1.2-8].
 */
export function willOf(
  will: WillMessage,
  publisher: { readonly clientId: string; readonly version?: number },
  session: { readonly expiryInterval: number },
): { message: Message; delay: number } {
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
  return {
    message,
    delay: delay > 0 && session.expiryInterval > 0 ? Math.min(delay, session.expiryInterval) : 0,
  };
}

/** Will properties a subscriber receives: all but the delay and the expiry (re-computed). */
function forwardable(props: Properties | undefined): Properties | undefined {
  if (props === undefined) return undefined;
  const { willDelayInterval: _delay, messageExpiryInterval: _expiry, ...rest } = props;
  return Object.keys(rest).length === 0 ? undefined : rest;
}
