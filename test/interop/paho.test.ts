/**
 * Interop with Eclipse Paho for Python (Debian's python3-paho-mqtt: 1.6 in bookworm, 2.x later;
 * the driver uses the 1.x callback signatures, which 2.x keeps as CallbackAPIVersion.VERSION1),
 * for MQTT 3.1.1 and 5.0.
 *
 * Each client is one Python process running DRIVER: it connects as its JSON argument says, then
 * takes commands as JSON lines on stdin (subscribe, publish, disconnect) and prints every
 * callback as a JSON line on stdout (connack, suback, published, message, disconnect). Payloads
 * travel in hex both ways. Automatic reconnection is off, so a dropped client stays dropped.
 * Negative checks publish a marker after the message that must not arrive and assert the marker
 * comes first: one connection's deliveries are ordered.
 */
import assert from 'node:assert/strict';
import { after, before, it, type TestContext } from 'node:test';
import { type Child, spawnChild, until } from '../helpers/child-process.ts';
import { describeWithTool, PYTHON, pahoPython, uniqueName } from '../helpers/interop-tools.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const DRIVER = `
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

let ts: TestServer;
before(async () => {
  ts = await startServer();
});
after(() => ts.close());

type Version = 4 | 5;

interface ClientConfig {
  clientId?: string;
  clean?: boolean;
  /** v5 Session Expiry Interval, seconds. */
  sessionExpiry?: number;
  will?: { topic: string; payload: string; qos: 0 | 1 | 2; retain: boolean };
  port?: number;
  /** Connect over WebSocket to this path (port must then be the WebSocket port). */
  wsPath?: string;
}

interface Event {
  event: 'connack' | 'suback' | 'published' | 'message' | 'disconnect';
  rc?: number;
  sessionPresent?: boolean;
  granted?: number[];
  topic?: string;
  payload?: string;
  qos?: number;
  retain?: boolean;
}

interface Received {
  topic: string;
  payload: string;
  qos: number;
  retain: boolean;
}

const hexOf = (text: string): string => Buffer.from(text).toString('hex');

/** One Paho client, driven through its Python process. */
class Paho {
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

/** Starts a Paho client and waits for a successful CONNACK. */
async function paho(t: TestContext, version: Version, config: ClientConfig = {}): Promise<Paho> {
  const { port = ts.port, clientId = uniqueName('paho'), clean = true, ...rest } = config;
  const args = JSON.stringify({ version, port, clientId, clean, ...rest });
  const client = new Paho(spawnChild(t, PYTHON, ['-u', '-c', DRIVER, args]));
  client.connack = await client.waitFor((e) => e.event === 'connack', 'CONNACK');
  assert.equal(client.connack.rc, 0, client.child.report());
  return client;
}

function session(clientId: string): ReturnType<typeof ts.server.defaultBroker.sessions.get> {
  return ts.server.defaultBroker.sessions.get(clientId);
}

for (const version of [4, 5] as const) {
  const v = `MQTT ${version === 4 ? '3.1.1' : '5.0'}`;

  describeWithTool(`Paho Python, ${v}`, pahoPython, () => {
    it(`${v}: QoS 0, 1 and 2 round trips deliver the payload intact at the granted QoS`, async (t) => {
      const sub = await paho(t, version);
      const pub = await paho(t, version);
      for (const qos of [0, 1, 2] as const) {
        const topic = uniqueName(`paho/v${version}/qos${qos}`);
        assert.deepEqual(await sub.subscribe(topic, qos), [qos]);
        const payload = `héllo "wörld" ✓ qos ${qos}`;
        await pub.publish(topic, payload, qos);
        await sub.message(payload);
        assert.deepEqual(
          sub.messages.filter((m) => m.topic === topic),
          [{ topic, payload, qos, retain: false }],
        );
      }
    });

    it(`${v}: over WebSocket (transport="websockets"), QoS 0/1/2 round trips with a TCP client both ways`, async (t) => {
      const wsPort = Number(new URL(ts.wsUrl).port);
      const overWs = await paho(t, version, { port: wsPort, wsPath: '/mqtt' });
      const overTcp = await paho(t, version);
      for (const qos of [0, 1, 2] as const) {
        const toWs = uniqueName(`paho/ws/v${version}/qos${qos}`);
        const toTcp = uniqueName(`paho/tcp/v${version}/qos${qos}`);
        assert.deepEqual(await overWs.subscribe(toWs, qos), [qos]);
        assert.deepEqual(await overTcp.subscribe(toTcp, qos), [qos]);
        await overTcp.publish(toWs, `tcp→ws ${qos}`, qos);
        await overWs.message(`tcp→ws ${qos}`);
        await overWs.publish(toTcp, `ws→tcp ${qos}`, qos);
        await overTcp.message(`ws→tcp ${qos}`);
        assert.deepEqual(
          overWs.messages.filter((m) => m.topic === toWs).map((m) => m.qos),
          [qos],
        );
      }
    });

    it(`${v}: + matches one level and # matches the parent and every level below`, async (t) => {
      const p = uniqueName(`paho/v${version}/wild`);
      const plus = await paho(t, version);
      await plus.subscribe(`${p}/+/temp`, 1);
      const hash = await paho(t, version);
      await hash.subscribe(`${p}/#`, 1);
      const pub = await paho(t, version);
      const topics = [`${p}/a/temp`, `${p}/a/b/temp`, p, `${p}/temp`, `${p}/end/temp`];
      for (const topic of topics) await pub.publish(topic, topic, 1);
      await plus.message(`${p}/end/temp`, 'the marker via +');
      await hash.message(`${p}/end/temp`, 'the marker via #');
      assert.deepEqual(
        plus.messages.map((m) => m.topic),
        [`${p}/a/temp`, `${p}/end/temp`],
      );
      assert.deepEqual(
        hash.messages.map((m) => m.topic),
        topics,
      ); // [MQTT-4.7.1-2] `#` includes the parent level
    });

    it(`${v}: wildcards at the first level do not match topics starting with $ [MQTT-4.7.2-1]`, async (t) => {
      // A server of its own: a `#` subscriber sees every topic on the server.
      const own = await startServer();
      t.after(() => own.close());
      const port = own.port;
      const all = await paho(t, version, { port });
      await all.subscribe('#', 1);
      const plus = await paho(t, version, { port });
      await plus.subscribe('+/x', 1);
      const dollar = await paho(t, version, { port });
      await dollar.subscribe('$interop/#', 1);
      const pub = await paho(t, version, { port });
      await pub.publish('$interop/x', 'dollar', 1);
      await pub.publish('plain/x', 'plain', 1);
      await dollar.message('dollar', '$interop/x via $interop/#');
      await all.message('plain', 'plain/x via #');
      await plus.message('plain', 'plain/x via +/x');
      assert.deepEqual(
        all.messages.map((m) => m.topic),
        ['plain/x'],
      );
      assert.deepEqual(
        plus.messages.map((m) => m.topic),
        ['plain/x'],
      );
    });

    it(`${v}: a retained message is sent on subscribe with retain set, and an empty one deletes it`, async (t) => {
      const topic = uniqueName(`paho/v${version}/retained`);
      const pub = await paho(t, version);
      await pub.publish(topic, 'kept', 1, true);
      const first = await paho(t, version);
      await first.subscribe(topic, 1);
      await first.message('kept', 'the retained message');
      assert.deepEqual(first.messages, [{ topic, payload: 'kept', qos: 1, retain: true }]); // [MQTT-3.3.1-8]

      await pub.publish(topic, '', 1, true); // [MQTT-3.3.1-10]
      const second = await paho(t, version);
      await second.subscribe(topic, 1);
      await pub.publish(topic, 'marker', 1);
      await second.message('marker');
      assert.deepEqual(second.messages, [{ topic, payload: 'marker', qos: 1, retain: false }]);
    });

    it(`${v}: the will is published when the client is killed`, async (t) => {
      const topic = uniqueName(`paho/v${version}/will`);
      const watcher = await paho(t, version);
      await watcher.subscribe(topic, 1);
      const doomed = await paho(t, version, {
        will: { topic, payload: hexOf('gone'), qos: 1, retain: false },
      });
      await doomed.child.kill();
      await watcher.message('gone', 'the will');
      assert.deepEqual(watcher.messages, [{ topic, payload: 'gone', qos: 1, retain: false }]);
    });

    it(`${v}: the will is discarded after a normal DISCONNECT [MQTT-3.1.2-10]`, async (t) => {
      const topic = uniqueName(`paho/v${version}/no-will`);
      const watcher = await paho(t, version);
      await watcher.subscribe(topic, 1);
      const clientId = uniqueName('paho-will');
      const polite = await paho(t, version, {
        clientId,
        will: { topic, payload: hexOf('gone'), qos: 1, retain: false },
      });
      await polite.disconnect();
      await until(() => session(clientId) === undefined, `the broker to end ${clientId}'s session`);
      await watcher.publish(topic, 'marker', 1);
      await watcher.message('marker');
      assert.deepEqual(
        watcher.messages.map((m) => m.payload),
        ['marker'],
      );
    });

    it(`${v}: a persistent session resumes with the QoS 1 messages queued while offline`, async (t) => {
      const topic = uniqueName(`paho/v${version}/persist`);
      const clientId = uniqueName('paho-persist');
      const persistent: ClientConfig = {
        clientId,
        clean: false,
        ...(version === 5 ? { sessionExpiry: 300 } : {}),
      };
      const first = await paho(t, version, persistent);
      assert.equal(first.connack!.sessionPresent, false);
      await first.subscribe(topic, 1);
      await first.disconnect();
      await until(() => {
        const s = session(clientId);
        return s !== undefined && s.link === undefined;
      }, `${clientId}'s session to outlive its connection`);

      const pub = await paho(t, version);
      for (const n of [1, 2, 3]) await pub.publish(topic, `m${n}`, 1);

      const second = await paho(t, version, persistent);
      assert.equal(second.connack!.sessionPresent, true); // [MQTT-3.2.2-3]
      await second.message('m3', 'the last queued message');
      assert.deepEqual(
        second.messages.map((m) => [m.topic, m.payload, m.qos]),
        [
          [topic, 'm1', 1],
          [topic, 'm2', 1],
          [topic, 'm3', 1],
        ],
      );
    });

    it(`${v}: a second connection with the same client id takes the session over [MQTT-3.1.4-3]`, async (t) => {
      const topic = uniqueName(`paho/v${version}/takeover`);
      const clientId = uniqueName('paho-takeover');
      const first = await paho(t, version, { clientId });
      const second = await paho(t, version, { clientId });
      const dropped = await first.waitFor((e) => e.event === 'disconnect', 'the first connection dropped');
      // v5: DISCONNECT 0x8E Session taken over; 3.1.1 has no such packet, Paho reports the lost connection.
      if (version === 5) assert.equal(dropped.rc, 0x8e);
      else assert.notEqual(dropped.rc, 0);

      await second.subscribe(topic, 1);
      await second.publish(topic, 'still here', 1);
      await second.message('still here');
      assert.deepEqual(
        second.events.filter((e) => e.event === 'disconnect'),
        [],
      );
    });
  });
}
