/**
 * JSON schemas of the admin API: fastify validates requests with them (ajv) and
 * @fastify/swagger publishes them in /openapi.json, so the document and the checks are one
 * source. Unknown body fields are ignored, as Cloudflare's API does (the guide's clients send
 * extras), but known fields are type-checked.
 */
const error = {
  type: 'object',
  properties: { code: { type: 'integer' }, message: { type: 'string' } },
} as const;

/** The envelope around a result schema. */
export function envelope(result: object, list = false): object {
  const properties: Record<string, object> = {
    result,
    success: { type: 'boolean' },
    errors: { type: 'array', items: error },
    messages: { type: 'array', items: {} },
  };
  if (list)
    properties.result_info = {
      type: 'object',
      properties: {
        page: { type: 'integer' },
        per_page: { type: 'integer' },
        count: { type: 'integer' },
        total_count: { type: 'integer' },
        total_pages: { type: 'integer' },
      },
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
  },
} as const;

export const apiToken = {
  type: 'object',
  properties: {
    id,
    name: { type: 'string' },
    status: { type: 'string' },
    issued_on: timestamp,
    last_used_on: { type: ['string', 'null'] },
    value: { type: 'string', description: 'the secret; returned only when created' },
  },
} as const;

export const createNamespaceBody = {
  type: 'object',
  required: ['name'],
  properties: { name, description },
} as const;

export const createBrokerBody = {
  type: 'object',
  required: ['name'],
  properties: { name, description, authType, auth_type: authType, expiration, on_publish: onPublish },
} as const;

export const updateBrokerBody = {
  type: 'object',
  properties: { description, authType, auth_type: authType, expiration, on_publish: onPublish },
} as const;

export const createTokenBody = {
  type: 'object',
  required: ['name'],
  properties: { name: { type: 'string', minLength: 1, maxLength: 120 } },
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
