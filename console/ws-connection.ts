/**
 * One connection of the WebSocket client page: MQTT.js's browser build over ws:// or wss:// to a
 * broker's WebSocket endpoint. MQTT 3.1.1 or 5.0, with a will; subscribe with QoS (and MQTT 5
 * options), publish with QoS, retain and MQTT 5 properties; a log of received messages (text,
 * JSON, hex, base64), searchable and clearable; a live topic tree and chart of what arrived
 * (ws-live.js). For a broker that wants a token the console can mint a short-lived one through
 * the API (`GET .../credentials`, one hour). Redrawing after messages is batched (DRAW_MS), so a
 * burst of messages costs one redraw.
 */
import type {
  IClientOptions,
  IClientPublishOptions,
  IClientSubscribeOptions,
  IPublishPacket,
  MqttClient,
} from 'mqtt';
import { type ApiRecord, type BrokerTree, brokerPathOf, call } from './api.ts';
import { brokerSelect, el, field, replace, select, statusLine } from './dom.ts';
import { formatPayload, text } from './payload.ts';
import { liveChart, topicTree } from './ws-live.ts';

type QoS = 0 | 1 | 2;
type Mqtt = typeof import('mqtt').default;

const KEPT_MESSAGES = 1000;
const MINTED_TOKEN_SECONDS = 3600;
const DRAW_MS = 150;

/**
 * A connection panel: a region headed `title`, with its own forms, status and views.
 */
export function connectionPanel(mqtt: Mqtt, tree: BrokerTree, title: string, onClose?: () => void) {
  const brokers = new Map<string, ApiRecord>(
    tree.flatMap(({ namespace, brokers: list }) => list.map((b) => [`${b.name}.${namespace.name}`, b])),
  );
  const preferred = new URLSearchParams(location.search).get('broker') ?? 'default.local';
  const choice = brokerSelect(tree, preferred, {});
  const url = el('input', { type: 'url', required: true });
  const version = select(
    [
      ['5', 'MQTT 5.0'],
      ['4', 'MQTT 3.1.1'],
    ],
    {},
  );
  const clientId = el('input', {
    type: 'text',
    value: `console-${crypto.getRandomValues(new Uint32Array(1))[0].toString(16)}`,
  });
  const username = el('input', { type: 'text', autocomplete: 'off' });
  const password = el('input', { type: 'password', autocomplete: 'off' });
  const clean = el('input', { type: 'checkbox', checked: true });
  const keepalive = el('input', { type: 'number', min: 0, max: 65535, value: 60 });
  const willTopic = el('input', { type: 'text' });
  const willPayload = el('input', { type: 'text' });
  const willQos = select(
    [
      ['0', 'QoS 0'],
      ['1', 'QoS 1'],
      ['2', 'QoS 2'],
    ],
    {},
  );
  const willRetain = el('input', { type: 'checkbox' });
  const willDelay = el('input', { type: 'number', min: 0 });
  const connection = statusLine();
  const status = statusLine();
  let client: MqttClient | undefined;

  function brokerChosen() {
    const broker = brokers.get(choice.value);
    if (!broker) return;
    // A page served over https may only open wss:; over http, ws: avoids a certificate the
    // browser does not trust (--tls-self-signed).
    const { ws, wss } = broker.endpoints;
    url.value = (location.protocol === 'https:' ? (wss ?? ws) : (ws ?? wss)) ?? '';
    username.value = broker.mqtt_username;
    password.value = '';
  }
  choice.addEventListener('change', brokerChosen);
  brokerChosen();

  const mint = el(
    'button',
    {
      type: 'button',
      onclick: async () => {
        status.clear();
        try {
          const tokens = await call('GET', brokerPathOf(choice.value, '/credentials'), {
            query: {
              number: 1,
              type: 'TOKEN',
              clientid: clientId.value.trim() || undefined,
              expiration: MINTED_TOKEN_SECONDS,
            },
          });
          const [id, jwt] = Object.entries(tokens as Record<string, string>)[0]!;
          clientId.value = id;
          password.value = jwt;
          status.ok(`Minted a token for ${id}, valid for one hour.`);
        } catch (err) {
          status.failed(err);
        }
      },
    },
    'Mint token',
  );

  const connectButton = el('button', { type: 'submit' }, 'Connect');
  const disconnectButton = el(
    'button',
    { type: 'button', disabled: true, onclick: () => client?.end() },
    'Disconnect',
  );
  const connectForm = el(
    'form',
    { class: 'card', 'aria-label': 'Connection' },
    el('div', { class: 'row' }, field('Broker', choice), field('URL', url), field('Protocol', version)),
    el(
      'div',
      { class: 'row' },
      field('Client id', clientId),
      field('User name', username),
      field('Password or token', password),
      mint,
    ),
    el(
      'div',
      { class: 'row' },
      el('label', { class: 'check' }, clean, 'Clean start'),
      field('Keep alive (seconds)', keepalive),
    ),
    el(
      'details',
      {},
      el('summary', {}, 'Will'),
      el(
        'div',
        { class: 'row' },
        field('Will topic', willTopic, 'empty: no will'),
        field('Will payload', willPayload),
        field('Will QoS', willQos),
        el('label', { class: 'check' }, willRetain, 'Will retain'),
        field('Will delay (seconds, MQTT 5)', willDelay),
      ),
    ),
    el('div', { class: 'row' }, connectButton, disconnectButton, connection.node),
  );

  function connected(yes: boolean) {
    connectButton.disabled = yes;
    disconnectButton.disabled = !yes;
    subscribeButton.disabled = !yes;
    publishButton.disabled = !yes;
  }

  connectForm.addEventListener('submit', (event) => {
    event.preventDefault();
    client?.end(true);
    const protocolVersion = Number(version.value);
    const options: IClientOptions = {
      protocolVersion: protocolVersion as IClientOptions['protocolVersion'],
      clientId: clientId.value,
      clean: clean.checked,
      keepalive: Number(keepalive.value),
      reconnectPeriod: 0,
      connectTimeout: 10_000,
    };
    if (username.value !== '') options.username = username.value;
    if (password.value !== '') options.password = password.value;
    if (willTopic.value !== '') {
      options.will = {
        topic: willTopic.value,
        payload: willPayload.value,
        qos: Number(willQos.value) as QoS,
        retain: willRetain.checked,
        ...(protocolVersion === 5 && willDelay.value !== ''
          ? { properties: { willDelayInterval: Number(willDelay.value) } }
          : {}),
      };
    }
    connection.ok('Connecting…');
    const current = mqtt.connect(url.value, options);
    client = current;
    let serverReason: string | undefined;
    current.on('connect', (connack) => {
      connected(true);
      connection.ok(
        `Connected (MQTT ${protocolVersion === 5 ? '5.0' : '3.1.1'}${connack.sessionPresent ? ', session present' : ''}).`,
      );
    });
    current.on('disconnect', (packet) => {
      serverReason = `the server disconnected it: reason 0x${(packet.reasonCode ?? 0).toString(16).padStart(2, '0')}${packet.properties?.reasonString ? ` (${packet.properties.reasonString})` : ''}`;
    });
    current.on('error', (err) => {
      serverReason = err.message;
      connection.error(`Error: ${err.message}`);
    });
    current.on('close', () => {
      if (client !== current) return;
      connected(false);
      if (serverReason) connection.error(`Disconnected: ${serverReason}.`);
      else connection.ok('Disconnected.');
    });
    current.on('message', (topic, payload, packet) => record(topic, payload, packet));
  });

  // Subscribe
  const filter = el('input', { type: 'text', required: true, value: '#' });
  const subQos = select(
    [
      ['0', 'QoS 0'],
      ['1', 'QoS 1'],
      ['2', 'QoS 2'],
    ],
    {},
  );
  const noLocal = el('input', { type: 'checkbox' });
  const retainAsPublished = el('input', { type: 'checkbox' });
  const retainHandling = select(
    [
      ['0', 'send retained'],
      ['1', 'send retained if new'],
      ['2', 'do not send retained'],
    ],
    {},
  );
  const subscriptions = el('ul', { class: 'subscriptions', 'aria-label': 'Subscriptions' });
  const subscribeButton = el('button', { type: 'submit', disabled: true }, 'Subscribe');
  const subscribeForm = el(
    'form',
    { class: 'card', 'aria-label': 'Subscribe' },
    el('h3', {}, 'Subscribe'),
    el(
      'div',
      { class: 'row' },
      field('Filter', filter),
      field('Subscription QoS', subQos),
      field('Retain handling (MQTT 5)', retainHandling),
      el('label', { class: 'check' }, noLocal, 'No local (MQTT 5)'),
      el('label', { class: 'check' }, retainAsPublished, 'Retain as published (MQTT 5)'),
      subscribeButton,
    ),
    subscriptions,
  );
  subscribeForm.addEventListener('submit', (event) => {
    event.preventDefault();
    if (!client) return;
    const subscriber = client;
    const topic = filter.value;
    const options: IClientSubscribeOptions = { qos: Number(subQos.value) as QoS };
    if (client.options.protocolVersion === 5)
      Object.assign(options, {
        nl: noLocal.checked,
        rap: retainAsPublished.checked,
        rh: Number(retainHandling.value) as IClientSubscribeOptions['rh'],
      });
    client.subscribe(topic, options, (err, granted) => {
      if (err) return status.error(`Subscribe ${topic}: ${err.message}`);
      const code = granted?.[0]?.qos;
      if (code === undefined || code >= 0x80)
        return status.error(`Subscribe ${topic} refused: reason 0x${(code ?? 0x80).toString(16)}`);
      status.ok(`Subscribed to ${topic} (granted QoS ${code}).`);
      const item = el(
        'li',
        {},
        el('code', {}, topic),
        ` QoS ${code} `,
        el(
          'button',
          {
            type: 'button',
            'aria-label': `Unsubscribe ${topic}`,
            onclick: () => subscriber.unsubscribe(topic, () => item.remove()),
          },
          'Unsubscribe',
        ),
      );
      subscriptions.append(item);
    });
  });

  // Publish
  const topic = el('input', { type: 'text', required: true });
  const payload = el('textarea', { rows: 3 });
  const pubQos = select(
    [
      ['0', 'QoS 0'],
      ['1', 'QoS 1'],
      ['2', 'QoS 2'],
    ],
    {},
  );
  const retain = el('input', { type: 'checkbox' });
  const contentType = el('input', { type: 'text', placeholder: 'application/json' });
  const expiry = el('input', { type: 'number', min: 0 });
  const userProperties = el('textarea', { rows: 2, placeholder: 'unit=C' });
  const publishButton = el('button', { type: 'submit', disabled: true }, 'Publish');
  const publishForm = el(
    'form',
    { class: 'card', 'aria-label': 'Publish' },
    el('h3', {}, 'Publish'),
    el(
      'div',
      { class: 'row' },
      field('Topic', topic),
      field('Publish QoS', pubQos),
      el('label', { class: 'check' }, retain, 'Retain'),
    ),
    field('Payload', payload),
    el(
      'details',
      {},
      el('summary', {}, 'MQTT 5 properties'),
      el(
        'div',
        { class: 'row' },
        field('Content type', contentType),
        field('Message expiry (seconds)', expiry),
        field('User properties', userProperties, 'key=value, one a line'),
      ),
    ),
    publishButton,
  );
  publishForm.addEventListener('submit', (event) => {
    event.preventDefault();
    if (!client) return;
    const options: IClientPublishOptions = { qos: Number(pubQos.value) as QoS, retain: retain.checked };
    if (client.options.protocolVersion === 5) {
      const properties: NonNullable<IClientPublishOptions['properties']> = {};
      if (contentType.value !== '') properties.contentType = contentType.value;
      if (expiry.value !== '') properties.messageExpiryInterval = Number(expiry.value);
      const pairs = userProperties.value.split('\n').filter((l) => l.includes('='));
      if (pairs.length > 0) {
        const user: Record<string, string> = {};
        properties.userProperties = user;
        for (const line of pairs) {
          const at = line.indexOf('=');
          user[line.slice(0, at).trim()] = line.slice(at + 1);
        }
      }
      options.properties = properties;
    }
    const name = topic.value;
    client.publish(name, payload.value, options, (err) => {
      if (err) status.error(`Publish to ${name}: ${err.message}`);
      else status.ok(`Published to ${name}.`);
    });
  });

  // Messages
  const messages: {
    time: Date;
    topic: string;
    bytes: Uint8Array;
    qos: number;
    retain: boolean;
    properties: ApiRecord | undefined;
  }[] = [];
  const view = select(
    [
      ['text', 'Text'],
      ['json', 'JSON'],
      ['hex', 'Hex'],
      ['base64', 'Base64'],
    ],
    {},
  );
  const search = el('input', { type: 'search' });
  const log = el('ol', { class: 'messages' });
  const counter = el('span', { class: 'muted' });
  const messagesRegion = el(
    'section',
    { class: 'card', role: 'region', 'aria-label': 'Messages' },
    el('h3', {}, 'Messages'),
    el(
      'div',
      { class: 'row' },
      field('Payload view', view),
      field('Search messages', search, 'topic or payload text'),
      el(
        'button',
        {
          type: 'button',
          onclick: () => {
            messages.length = 0;
            draw();
          },
        },
        'Clear',
      ),
      counter,
    ),
    log,
  );
  view.addEventListener('change', draw);
  search.addEventListener('input', draw);

  function record(topicName: string, bytes: Uint8Array, packet: IPublishPacket) {
    messages.push({
      time: new Date(),
      topic: topicName,
      bytes: new Uint8Array(bytes),
      qos: packet.qos,
      retain: packet.retain,
      properties: packet.properties,
    });
    if (messages.length > KEPT_MESSAGES) messages.shift();
    topics.record(topicName, bytes);
    chart.record(topicName, bytes);
    if (drawTimer === undefined)
      drawTimer = setTimeout(() => {
        drawTimer = undefined;
        draw();
        topics.draw();
        chart.draw();
      }, DRAW_MS);
  }
  let drawTimer: ReturnType<typeof setTimeout> | undefined;

  function draw() {
    const needle = search.value.toLowerCase();
    const shown = messages.filter(
      (m) =>
        needle === '' ||
        m.topic.toLowerCase().includes(needle) ||
        text(m.bytes).toLowerCase().includes(needle),
    );
    counter.textContent = `${shown.length} of ${messages.length} shown`;
    replace(
      log,
      shown
        .slice()
        .reverse()
        .map((m) =>
          el(
            'li',
            {},
            el(
              'div',
              { class: 'meta' },
              el('time', {}, m.time.toLocaleTimeString()),
              ' ',
              el('code', { class: 'topic' }, m.topic),
              ` QoS ${m.qos}`,
              m.retain ? ' retained' : '',
              ` ${m.bytes.length} B`,
              m.properties && Object.keys(m.properties).length > 0
                ? el('span', { class: 'props' }, ` ${JSON.stringify(m.properties)}`)
                : null,
            ),
            el('pre', { class: 'payload' }, formatPayload(m.bytes, view.value)),
          ),
        ),
    );
  }

  const topics = topicTree((name: string) => chart.show(name));
  const chart = liveChart();
  const heading = el('h2', {}, title);
  const node = el(
    'section',
    { class: 'connection', role: 'region', 'aria-label': title },
    el(
      'div',
      { class: 'row spread' },
      heading,
      onClose
        ? el('button', { type: 'button', 'aria-label': `Close ${title}`, onclick: onClose }, 'Close')
        : null,
    ),
    status.node,
    connectForm,
    subscribeForm,
    publishForm,
    messagesRegion,
    topics.node,
    chart.node,
  );
  draw();
  return {
    node,
    close() {
      clearTimeout(drawTimer);
      chart.close();
      client?.end(true);
    },
  };
}
