/**
 * Eclipse Paho for Python (Debian's python3-paho-mqtt: 1.6 in bookworm, 2.x later; the driver
 * uses the 1.x callback signatures, which 2.x keeps as CallbackAPIVersion.VERSION1), for MQTT
 * 3.1.1 and 5.0, driven from a test.
 *
 * Each client is one Python process running DRIVER: it connects as its JSON argument says, then
 * takes commands as JSON lines on stdin (subscribe, publish, disconnect) and prints every
 * callback as a JSON line on stdout (connack, suback, published, message, disconnect). Payloads
 * travel in hex both ways. Automatic reconnection is off, so a dropped client stays dropped.
 * Used by test/interop/paho.test.ts and the cluster's interop tests.
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { type Child, spawnChild } from './child-process.ts';
import { PYTHON, uniqueName } from './interop-tools.ts';

export const DRIVER = `
import json, sys, threading
import paho.mqtt.client as mqtt

cfg = json.loads(sys.argv[1])
v5 = cfg["version"] == 5
lock = threading.Lock()

def emit(**event):
    with lock:
        sys.stdout.write(json.dumps(event) + "\\n")
        sys.stdout.flush()

def code(rc):
    return getattr(rc, "value", rc)

# paho-mqtt 2.x asks which callback signatures to use; VERSION1 is the 1.x ones used here.
compat = {"callback_api_version": mqtt.CallbackAPIVersion.VERSION1} if hasattr(mqtt, "CallbackAPIVersion") else {}
transport = "websockets" if cfg.get("wsPath") else "tcp"
if v5:
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties
    client = mqtt.Client(client_id=cfg["clientId"], protocol=mqtt.MQTTv5, reconnect_on_failure=False,
                         transport=transport, **compat)
else:
    client = mqtt.Client(client_id=cfg["clientId"], clean_session=cfg["clean"],
                         protocol=mqtt.MQTTv311, reconnect_on_failure=False, transport=transport, **compat)
if cfg.get("wsPath"):
    client.ws_set_options(path=cfg["wsPath"])

def on_connect(c, userdata, flags, rc, properties=None):
    emit(event="connack", rc=code(rc), sessionPresent=bool(flags.get("session present")))

def on_subscribe(c, userdata, mid, granted, properties=None):
    emit(event="suback", granted=[code(g) for g in granted])

def on_publish(c, userdata, mid):
    emit(event="published", mid=mid)

def on_message(c, userdata, msg):
    emit(event="message", topic=msg.topic, payload=msg.payload.hex(), qos=msg.qos, retain=bool(msg.retain))

def on_disconnect(c, userdata, rc, properties=None):
    emit(event="disconnect", rc=code(rc))

client.on_connect = on_connect
client.on_subscribe = on_subscribe
client.on_publish = on_publish
client.on_message = on_message
client.on_disconnect = on_disconnect

will = cfg.get("will")
if will:
    client.will_set(will["topic"], bytes.fromhex(will["payload"]), will["qos"], will["retain"])

if v5:
    props = None
    if cfg.get("sessionExpiry"):
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = cfg["sessionExpiry"]
    client.connect("127.0.0.1", cfg["port"], 60, clean_start=cfg["clean"], properties=props)
else:
    client.connect("127.0.0.1", cfg["port"], 60)
client.loop_start()

for line in sys.stdin:
    cmd = json.loads(line)
    if cmd["op"] == "subscribe":
        client.subscribe(cmd["topic"], cmd["qos"])
    elif cmd["op"] == "publish":
        client.publish(cmd["topic"], bytes.fromhex(cmd["payload"]), cmd["qos"], cmd["retain"])
    elif cmd["op"] == "disconnect":
        client.disconnect()
client.loop_stop()
`;

export type Version = 4 | 5;

export interface ClientConfig {
  clientId?: string;
  clean?: boolean;
  /** v5 Session Expiry Interval, seconds. */
  sessionExpiry?: number;
  will?: { topic: string; payload: string; qos: 0 | 1 | 2; retain: boolean };
  port?: number;
  /** Connect over WebSocket to this path (port must then be the WebSocket port). */
  wsPath?: string;
}

export interface Event {
  event: 'connack' | 'suback' | 'published' | 'message' | 'disconnect';
  rc?: number;
  sessionPresent?: boolean;
  granted?: number[];
  topic?: string;
  payload?: string;
  qos?: number;
  retain?: boolean;
}

export interface Received {
  topic: string;
  payload: string;
  qos: number;
  retain: boolean;
}

export const hexOf = (text: string): string => Buffer.from(text).toString('hex');

/** One Paho client, driven through its Python process. */
export class Paho {
  readonly child: Child;
  connack: Event | undefined;

  constructor(child: Child) {
    this.child = child;
  }

  get events(): Event[] {
    return this.child.lines.filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Event);
  }

  get messages(): Received[] {
    return this.events
      .filter((e) => e.event === 'message')
      .map((e) => ({
        topic: e.topic!,
        payload: Buffer.from(e.payload!, 'hex').toString(),
        qos: e.qos!,
        retain: e.retain!,
      }));
  }

  async waitFor(predicate: (e: Event) => boolean, what: string, from = 0): Promise<Event> {
    const line = await this.child.waitForLine(
      (l) => l.startsWith('{') && predicate(JSON.parse(l) as Event),
      what,
      from,
    );
    return JSON.parse(line) as Event;
  }

  #command(command: Record<string, unknown>): number {
    const mark = this.child.lines.length;
    this.child.writeLine(JSON.stringify(command));
    return mark;
  }

  /** Subscribes and resolves with the SUBACK's granted QoS / reason codes. */
  async subscribe(topic: string, qos: 0 | 1 | 2): Promise<number[]> {
    const mark = this.#command({ op: 'subscribe', topic, qos });
    return (await this.waitFor((e) => e.event === 'suback', `SUBACK for ${topic}`, mark)).granted!;
  }

  /** Publishes and resolves once Paho reports it done (sent for QoS 0, acknowledged otherwise). */
  async publish(topic: string, payload: string, qos: 0 | 1 | 2, retain = false): Promise<void> {
    const mark = this.#command({ op: 'publish', topic, payload: hexOf(payload), qos, retain });
    await this.waitFor((e) => e.event === 'published', `publish to ${topic} completing`, mark);
  }

  /** A normal DISCONNECT; resolves when Paho reports the connection closed. */
  async disconnect(): Promise<void> {
    const mark = this.#command({ op: 'disconnect' });
    await this.waitFor((e) => e.event === 'disconnect', 'disconnect', mark);
  }

  /** Waits for a message with this payload. */
  message(payload: string, what = `message ${JSON.stringify(payload)}`): Promise<Event> {
    return this.waitFor((e) => e.event === 'message' && e.payload === hexOf(payload), what);
  }
}

/** Starts a Paho client on `port` and waits for a successful CONNACK. */
export async function startPaho(
  t: TestContext,
  version: Version,
  port: number,
  config: ClientConfig = {},
): Promise<Paho> {
  const { clientId = uniqueName('paho'), clean = true, ...rest } = config;
  const args = JSON.stringify({ version, port, clientId, clean, ...rest });
  const client = new Paho(spawnChild(t, PYTHON, ['-u', '-c', DRIVER, args]));
  client.connack = await client.waitFor((e) => e.event === 'connack', 'CONNACK');
  assert.equal(client.connack.rc, 0, client.child.report());
  return client;
}
