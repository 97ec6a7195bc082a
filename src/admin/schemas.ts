/**
 * JSON schemas of the admin API: fastify validates requests with them (ajv) and
 * @fastify/swagger publishes them in /openapi.json, so the document and the checks are one
 * source. Unknown body fields are ignored, as Cloudflare's API does (the guide's clients send
 * extras), but known fields are type-checked; inside a broker's `limits` (ours) an unknown field
 * is refused (routes/brokers.ts names it), since a misspelt limit would silently be no limit.
 */
import { OPTIONS, type OptionDef } from '../config.ts';
import { BROKER_LIMIT_FIELDS, BROKER_LIMIT_OPTIONS, RATE_LIMIT_ACTIONS } from '../store/index.ts';

const error = {
  type: 'object',
  properties: { code: { type: 'integer' }, message: { type: 'string' } },
} as const;

/** The envelope around a result schema; `list`: with `result_info` (`uncounted`: `has_more`, no totals). */
export function envelope(result: object, list: boolean | 'uncounted' = false): object {
  const properties: Record<string, object> = {
    result,
    success: { type: 'boolean' },
    errors: { type: 'array', items: error },
    messages: { type: 'array', items: {} },
  };
  const paged = {
    page: { type: 'integer' },
    per_page: { type: 'integer' },
    count: { type: 'integer' },
  };
  if (list === 'uncounted')
    properties.result_info = {
      type: 'object',
      properties: { ...paged, has_more: { type: 'boolean', description: 'whether the next page has items' } },
    };
  else if (list)
    properties.result_info = {
      type: 'object',
      properties: { ...paged, total_count: { type: 'integer' }, total_pages: { type: 'integer' } },
    };
  return { type: 'object', properties, required: ['result', 'success', 'errors', 'messages'] };
}

export const errorEnvelope = envelope({ type: 'null' });

const timestamp = { type: 'string', format: 'date-time' } as const;
const id = { type: 'string', pattern: '^[0-9a-f]{32}$' } as const;
const name = {
  type: 'string',
  minLength: 1,
  maxLength: 63,
  description: 'DNS label (RFC 1035), case-insensitive',
};
const authType = { type: 'string', enum: ['TOKEN', 'MTLS', 'MTLS_AND_TOKEN', 'NONE'] } as const;
const expiration = {
  anyOf: [{ type: 'integer', minimum: 0 }, { type: 'null' }],
  description: 'default lifetime of issued credentials, in seconds; null: none',
} as const;
const sysTopics = {
  type: 'boolean',
  description:
    "whether the broker publishes its $SYS/broker/... statistics topics (default true; docs/observability.md); none while the server's --sys-interval is 0",
} as const;
const onPublish = {
  type: 'object',
  properties: {
    url: { type: ['string', 'null'], maxLength: 2048 },
    policy: {
      type: 'string',
      enum: ['fail-closed', 'fail-open'],
      description: 'when the hook fails: drop the messages (Cloudflare) or forward them unchanged',
    },
    timeout_ms: {
      anyOf: [{ type: 'integer', minimum: 1, maximum: 600000 }, { type: 'null' }],
      description: "webhook timeout in ms; null: the server's --hook-timeout-ms",
    },
  },
} as const;
const description = { type: 'string', maxLength: 1024 } as const;

export const account = {
  type: 'object',
  properties: { id, name: { type: 'string' }, created_on: timestamp },
} as const;

export const namespace = {
  type: 'object',
  properties: {
    id,
    name: { type: 'string' },
    description: { type: 'string' },
    created_on: timestamp,
    modified_on: timestamp,
  },
} as const;

/** Certificate brokers' CN → client id rule (docs/auth.md); null: the server's --mtls-client-id-pattern. */
const mtlsClientIdPattern = {
  type: ['string', 'null'],
  maxLength: 256,
  description:
    "MTLS brokers: a regular expression the client certificate's CN must match (anchored); the client id is its first capture group. null or empty: the server's --mtls-client-id-pattern",
} as const;

/**
 * A broker's own limits (docs/limits.md): each field an integer in its server option's range,
 * or null for the server's default (the option).
 */
const limitFields = Object.fromEntries([
  ...BROKER_LIMIT_FIELDS.map((field) => {
    const option = OPTIONS[BROKER_LIMIT_OPTIONS[field]] as OptionDef;
    return [
      field,
      {
        type: ['integer', 'null'],
        minimum: option.min,
        maximum: option.max,
        description: `null: the server's ${option.flag}`,
      },
    ];
  }),
  [
    'rate_limit_action',
    {
      type: ['string', 'null'],
      enum: [...RATE_LIMIT_ACTIONS, null],
      description:
        "over an inbound rate: throttle (hold the client's input) or disconnect (0x96); null: the server's --publish-rate-action",
    },
  ],
]);
const limits = {
  type: 'object',
  properties: limitFields,
  description: "the broker's own limits; a field null or absent is the server's flag (docs/limits.md)",
} as const;

export const broker = {
  type: 'object',
  properties: {
    id,
    name: { type: 'string' },
    description: { type: 'string' },
    authType,
    auth_type: authType,
    created_on: timestamp,
    modified_on: timestamp,
    expiration,
    endpoint: { type: ['string', 'null'] },
    endpoints: {
      type: 'object',
      properties: {
        mqtt: { type: 'string' },
        mqtts: { type: 'string' },
        ws: { type: 'string' },
        wss: { type: 'string' },
      },
    },
    mqtt_username: {
      type: 'string',
      description:
        'MQTT user name naming this broker (`<broker>.<namespace>`, or `<anything>@<broker>.<namespace>`) for clients that cannot send its host name',
    },
    on_publish: onPublish,
    sys_topics: sysTopics,
    mtls_client_id_pattern: mtlsClientIdPattern,
    limits,
  },
} as const;

const stringList = { type: 'array', items: { type: 'string' } } as const;
const permissionList = {
  type: 'array',
  items: { type: 'string', enum: ['pubsub:read', 'pubsub:edit', 'tokens:edit', 'operator'] },
} as const;
const tokenCondition = {
  type: 'object',
  properties: {
    request_ip: {
      type: 'object',
      properties: {
        in: { ...stringList, description: 'CIDR ranges the client address must be in' },
        not_in: { ...stringList, description: 'CIDR ranges the client address must not be in' },
      },
    },
  },
} as const;
const tokenResources = {
  type: 'object',
  properties: {
    accounts: { ...stringList, description: 'account ids the token may use (default: the owning account)' },
    namespaces: { ...stringList, description: 'namespaces the token is limited to (absent: all)' },
    brokers: { ...stringList, description: 'brokers `<broker>.<namespace>` it is limited to (absent: all)' },
  },
} as const;

export const apiToken = {
  type: 'object',
  properties: {
    id,
    name: { type: 'string' },
    status: { type: 'string', enum: ['active', 'expired', 'disabled'] },
    issued_on: timestamp,
    last_used_on: { type: ['string', 'null'] },
    expires_on: timestamp,
    not_before: timestamp,
    permissions: permissionList,
    resources: tokenResources,
    condition: tokenCondition,
    value: { type: 'string', description: 'the secret; returned only when created' },
  },
} as const;

/** `GET /user/tokens/verify`: Cloudflare's answer. */
export const verifiedToken = {
  type: 'object',
  properties: {
    id,
    status: { type: 'string', enum: ['active', 'expired', 'disabled'] },
    expires_on: timestamp,
    not_before: timestamp,
  },
} as const;

export const createNamespaceBody = {
  type: 'object',
  required: ['name'],
  properties: { name, description },
} as const;

/** The broker fields a create or update body may set (create adds the name). */
const brokerFields = {
  description,
  authType,
  auth_type: authType,
  expiration,
  on_publish: onPublish,
  sys_topics: sysTopics,
  mtls_client_id_pattern: mtlsClientIdPattern,
  limits,
} as const;

export const createBrokerBody = {
  type: 'object',
  required: ['name'],
  properties: { name, ...brokerFields },
} as const;

export const updateBrokerBody = {
  type: 'object',
  properties: brokerFields,
} as const;

export const createTokenBody = {
  type: 'object',
  required: ['name'],
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 120 },
    permissions: { ...permissionList, minItems: 1, description: 'default: pubsub:edit and tokens:edit' },
    expires_on: { type: ['string', 'null'], description: 'ISO 8601 time; absent or null: never' },
    not_before: { type: ['string', 'null'], description: 'ISO 8601 time; absent or null: at once' },
    condition: tokenCondition,
    resources: tokenResources,
  },
} as const;

export const accountBody = {
  type: 'object',
  required: ['name'],
  properties: { name: { type: 'string', minLength: 1, maxLength: 100 } },
} as const;

const digits = { type: 'string', pattern: '^[0-9]{1,9}$' } as const;

export const paging = {
  type: 'object',
  properties: {
    page: { ...digits, description: 'page number, from 1 (default 1)' },
    per_page: { ...digits, description: 'items per page, 1..1000 (default 1000)' },
  },
} as const;

export const deleteNamespaceQuery = {
  type: 'object',
  properties: {
    cascade: { type: 'string', enum: ['true', 'false'], description: 'also delete its brokers' },
  },
} as const;

export const accountParams = { type: 'object', properties: { account_id: { type: 'string' } } } as const;
export const namespaceParams = {
  type: 'object',
  properties: { account_id: { type: 'string' }, namespace: { type: 'string' } },
} as const;
export const brokerParams = {
  type: 'object',
  properties: { account_id: { type: 'string' }, namespace: { type: 'string' }, broker: { type: 'string' } },
} as const;
export const tokenParams = {
  type: 'object',
  properties: { account_id: { type: 'string' }, token_id: { type: 'string' } },
} as const;

const nullableString = { type: ['string', 'null'] } as const;
const nullableInteger = { type: ['integer', 'null'] } as const;
const nullableTimestamp = { anyOf: [timestamp, { type: 'null' }] } as const;

const subscription = {
  type: 'object',
  properties: {
    filter: { type: 'string', description: 'the filter as subscribed, `$share/<group>/` prefix included' },
    qos: { type: 'integer', enum: [0, 1, 2], description: 'the QoS granted' },
    no_local: { type: 'boolean' },
    retain_as_published: { type: 'boolean' },
    retain_handling: { type: 'integer', enum: [0, 1, 2] },
    subscription_id: { ...nullableInteger, description: 'the v5 Subscription Identifier, if any' },
    share_group: { ...nullableString, description: 'the shared subscription group, if shared' },
  },
} as const;

const clientProperties = {
  client_id: { type: 'string' },
  connected: { type: 'boolean' },
  transport: { type: ['string', 'null'], enum: ['tcp', 'tls', 'ws', 'wss', 'memory', null] },
  remote_address: {
    ...nullableString,
    description: 'the client address (from the PROXY header or X-Forwarded-For where trusted)',
  },
  remote_port: nullableInteger,
  protocol_version: {
    ...nullableInteger,
    description: 'protocol level: 3 (MQTT 3.1), 4 (3.1.1), 5; null while offline',
  },
  keep_alive: {
    ...nullableInteger,
    description: "seconds: the client's, or the server's when it overrode it; 0 none",
  },
  connected_at: { ...nullableTimestamp, description: 'when the current connection was accepted' },
  subscription_count: { type: 'integer' },
  inflight: { type: 'integer', description: 'outbound QoS 1/2 messages awaiting acknowledgement' },
  queued: { type: 'integer', description: 'QoS 1/2 messages waiting to be sent' },
  session_expiry_interval: {
    type: 'integer',
    description: 'seconds the session outlives its connection; 0 none, 4294967295 never expires',
  },
  session_expires_at: { ...nullableTimestamp, description: 'when an offline session ends, if it does' },
} as const;

export const client = { type: 'object', properties: clientProperties } as const;

export const clientDetail = {
  type: 'object',
  properties: { ...clientProperties, subscriptions: { type: 'array', items: subscription } },
} as const;

export const kickResult = {
  type: 'object',
  properties: {
    client_id: { type: 'string' },
    disconnected: { type: 'boolean', description: 'a connection was closed (v5: DISCONNECT 0x98)' },
    session_discarded: { type: 'boolean', description: 'the session ended too (discard_session=true)' },
  },
} as const;

export const retainedMessage = {
  type: 'object',
  properties: {
    topic: { type: 'string' },
    qos: { type: 'integer', enum: [0, 1, 2] },
    payload_size: { type: 'integer', description: 'bytes' },
    payload: {
      type: 'string',
      description: 'base64, only with payload=true, at most payload_bytes bytes of it',
    },
    payload_truncated: {
      type: 'boolean',
      description: 'with payload=true: payload holds only the first payload_bytes',
    },
    properties: {
      type: 'object',
      description: 'the v5 properties kept with the message',
      properties: {
        payload_format_indicator: { type: 'integer' },
        content_type: { type: 'string' },
        response_topic: { type: 'string' },
        correlation_data: { type: 'string', description: 'base64' },
        user_properties: {
          type: 'array',
          items: { type: 'object', properties: { key: { type: 'string' }, value: { type: 'string' } } },
        },
        message_expiry_interval: { type: 'integer', description: 'seconds left' },
      },
    },
    stored_at: timestamp,
    expires_at: nullableTimestamp,
  },
} as const;

const flag = { type: 'string', enum: ['true', 'false'] } as const;

export const clientsQuery = {
  type: 'object',
  properties: {
    ...paging.properties,
    client_id_prefix: { type: 'string', maxLength: 65535, description: 'only client ids starting with this' },
  },
} as const;

export const kickQuery = {
  type: 'object',
  properties: {
    discard_session: { ...flag, description: 'also end the session (its subscriptions, queue and state)' },
  },
} as const;

export const retainedQuery = {
  type: 'object',
  properties: {
    ...paging.properties,
    filter: { type: 'string', maxLength: 65535, description: 'MQTT topic filter (default #); not $share' },
    payload: { ...flag, description: 'include the payload, base64' },
    payload_bytes: {
      ...digits,
      description: 'with payload=true: at most this many bytes of it, 1..65536 (default 1024)',
    },
  },
} as const;

export const retainedDeleteQuery = {
  type: 'object',
  properties: {
    topic: { type: 'string', maxLength: 65535, description: 'the topic; any topic, `/` included' },
  },
} as const;

export const clientParams = {
  type: 'object',
  properties: { ...brokerParams.properties, client_id: { type: 'string' } },
} as const;
export const retainedTopicParams = {
  type: 'object',
  properties: { ...brokerParams.properties, topic: { type: 'string' } },
} as const;

export const traceQuery = {
  type: 'object',
  properties: {
    client_id: {
      type: 'string',
      minLength: 1,
      maxLength: 65535,
      description: 'trace this client: every packet in and out',
    },
    clientId: { type: 'string', minLength: 1, maxLength: 65535, description: 'the same as client_id' },
    topic: {
      type: 'string',
      minLength: 1,
      maxLength: 65535,
      description: 'trace the PUBLISH packets whose topic this MQTT topic filter matches (not $share)',
    },
    payload: { ...flag, description: 'include payloads (UTF-8 text, else base64)' },
    payload_bytes: {
      ...digits,
      description: 'with payload=true: at most this many bytes of each, 1..65536 (default 256)',
    },
    payloadBytes: { ...digits, description: 'the same as payload_bytes' },
    duration: { ...digits, description: 'seconds the trace lasts, 1..--trace-max-duration (default 60)' },
  },
} as const;
