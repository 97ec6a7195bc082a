/**
 * The option table: every setting and limit of the server, each with its default, the CLI flag
 * and environment variable that set it, its unit and its clamp. Keys are the config-file keys and
 * the Config property names. Only data lives here; config.ts loads and validates it, cli.ts turns
 * each row into a `pubsub serve` flag, and config-doc.ts renders it as the reference in
 * docs/configuration.md (a test keeps the page in step).
 *
 * A `bool` option is a switch on the command line (`--flag`, `--no-flag`, `--flag true|false`);
 * so is a string option whose choices include `true` and `false` (tri-state, e.g. `auto`).
 */

export type OptionKind = 'string' | 'int' | 'bool';

/** One row of the table. */
export interface OptionDef {
  kind: OptionKind;
  default: string | number | boolean;
  flag: string;
  env: string;
  description: string;
  /** Inclusive range for integers. */
  min?: number;
  max?: number;
  /** Allowed values for strings. */
  choices?: readonly string[];
  /** What a free-form string is, for the reference in docs (`path`); without it, `text`. */
  allowed?: string;
}

const U32 = 0xffff_ffff;

/**
 * TLS 1.2 suites with forward secrecy (ECDHE) and authenticated encryption (GCM, ChaCha20-Poly1305):
 * no CBC (Lucky13-style padding oracles), no SHA-1 MACs, no static RSA or finite-field DHE.
 * Both ECDSA and RSA forms, so that either kind of certificate works; OpenSSL offers only those
 * matching the certificate's key.
 */
const TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/** The option table. Keys are the config-file keys and the Config property names. */
export const OPTIONS = {
  host: {
    kind: 'string',
    default: '127.0.0.1',
    flag: '--host',
    env: 'PUBSUB_HOST',
    description: 'Address every listener binds. The default keeps the broker on loopback.',
  },
  port: {
    kind: 'int',
    default: 1883,
    min: 0,
    max: 65535,
    flag: '--port',
    env: 'PUBSUB_PORT',
    description: 'MQTT over TCP port (0: the OS picks one).',
  },
  wsPort: {
    kind: 'int',
    default: 8083,
    min: -1,
    max: 65535,
    flag: '--ws-port',
    env: 'PUBSUB_WS_PORT',
    description: 'MQTT over WebSocket port (0: the OS picks one; -1: no WebSocket listener).',
  },
  wsPaths: {
    kind: 'string',
    default: '/mqtt,/',
    flag: '--ws-paths',
    env: 'PUBSUB_WS_PATHS',
    description: 'Comma-separated URL paths accepting WebSocket upgrades; any other path gets HTTP 404.',
  },
  wsRequireSubprotocol: {
    kind: 'bool',
    default: false,
    flag: '--ws-require-subprotocol',
    env: 'PUBSUB_WS_REQUIRE_SUBPROTOCOL',
    description:
      'Refuse (HTTP 400) upgrades that offer no subprotocol; those offering only non-MQTT ones always are.',
  },
  wsPerMessageDeflate: {
    kind: 'bool',
    default: false,
    flag: '--ws-permessage-deflate',
    env: 'PUBSUB_WS_PERMESSAGE_DEFLATE',
    description: 'Offer the permessage-deflate WebSocket extension (costs CPU per message).',
  },
  wsTrustProxy: {
    kind: 'bool',
    default: false,
    flag: '--ws-trust-proxy',
    env: 'PUBSUB_WS_TRUST_PROXY',
    description: 'Take the client address from X-Forwarded-For (only behind a proxy you run).',
  },
  wsTrustProxyHops: {
    kind: 'int',
    default: 1,
    min: 1,
    max: 16,
    flag: '--ws-trust-proxy-hops',
    env: 'PUBSUB_WS_TRUST_PROXY_HOPS',
    description:
      "With --ws-trust-proxy: the proxies you run in front of the broker. The client address is the X-Forwarded-For entry this many from the right (1: the last, written by the proxy next to the broker); entries left of it are the client's own claims.",
  },
  tlsPort: {
    kind: 'int',
    default: 8883,
    min: -1,
    max: 65535,
    flag: '--tls-port',
    env: 'PUBSUB_TLS_PORT',
    description:
      'MQTT over TLS port, open when a certificate is configured (0: the OS picks one; -1: no TLS listener).',
  },
  wssPort: {
    kind: 'int',
    default: 8884,
    min: -1,
    max: 65535,
    flag: '--wss-port',
    env: 'PUBSUB_WSS_PORT',
    description:
      'MQTT over secure WebSocket port, open when a certificate is configured (0: the OS picks one; -1: none).',
  },
  tlsCert: {
    kind: 'string',
    allowed: 'path',
    default: '',
    flag: '--tls-cert',
    env: 'PUBSUB_TLS_CERT',
    description:
      'PEM file with the server certificate (and its intermediates); with --tls-key it opens the TLS and WSS listeners. Re-read on SIGHUP.',
  },
  tlsKey: {
    kind: 'string',
    allowed: 'path',
    default: '',
    flag: '--tls-key',
    env: 'PUBSUB_TLS_KEY',
    description: 'PEM file with the private key of --tls-cert. Re-read on SIGHUP.',
  },
  tlsCa: {
    kind: 'string',
    allowed: 'path',
    default: '',
    flag: '--tls-ca',
    env: 'PUBSUB_TLS_CA',
    description:
      'PEM file with the CA certificates that client certificates must chain to (needed by --tls-client-auth). Re-read on SIGHUP.',
  },
  tlsSelfSigned: {
    kind: 'bool',
    default: false,
    flag: '--tls-self-signed',
    env: 'PUBSUB_TLS_SELF_SIGNED',
    description:
      'Open the TLS and WSS listeners with a development certificate for localhost, generated into the data directory (reused while valid).',
  },
  tlsClientAuth: {
    kind: 'string',
    default: 'none',
    choices: ['none', 'request', 'require'],
    flag: '--tls-client-auth',
    env: 'PUBSUB_TLS_CLIENT_AUTH',
    description:
      'Mutual TLS: request a client certificate (unverified ones are ignored) or require a verified one (else the handshake is refused).',
  },
  tlsCiphers: {
    kind: 'string',
    allowed: 'OpenSSL cipher list',
    default: TLS12_CIPHERS,
    flag: '--tls-ciphers',
    env: 'PUBSUB_TLS_CIPHERS',
    description:
      "OpenSSL cipher list for TLS 1.2 on the TLS and WSS listeners (default: ECDHE key exchange with AES-GCM or ChaCha20-Poly1305 only). TLS 1.3 keeps Node's suites unless TLS_ names are listed.",
  },
  tcpNoDelay: {
    kind: 'bool',
    default: true,
    flag: '--tcp-nodelay',
    env: 'PUBSUB_TCP_NODELAY',
    description:
      "TCP_NODELAY on client sockets (every listener): writes leave at once. false: Nagle's algorithm, fewer packets and less CPU at low rates, more latency.",
  },
  proxyProtocol: {
    kind: 'bool',
    default: false,
    flag: '--proxy-protocol',
    env: 'PUBSUB_PROXY_PROTOCOL',
    description:
      'Expect a PROXY protocol v1 or v2 header on the TCP and TLS listeners and take the client address from it; connections without one are closed.',
  },
  dataDir: {
    kind: 'string',
    allowed: 'path or :memory:',
    default: './data',
    flag: '--data-dir',
    env: 'PUBSUB_DATA_DIR',
    description: 'Directory for persistent state; created when missing.',
  },
  nodeName: {
    kind: 'string',
    allowed: 'letters, digits, . _ - (at most 63)',
    default: '',
    flag: '--node-name',
    env: 'PUBSUB_NODE_NAME',
    description:
      "This node's name in log lines, the metrics' node label and (issue 18) the cluster; empty: the name the data dir keeps (<data-dir>/node-name), else the host name.",
  },
  cluster: {
    kind: 'string',
    allowed: 'nats:// or tls:// URL list',
    default: '',
    flag: '--cluster',
    env: 'PUBSUB_CLUSTER',
    description:
      'Join a cluster through these NATS servers (comma-separated, e.g. nats://10.0.0.1:4222,nats://10.0.0.2:4222): messages cross to the nodes whose clients subscribe (docs/cluster.md). Empty: a single node, no NATS code loaded.',
  },
  clusterCreds: {
    kind: 'string',
    allowed: 'path',
    default: '',
    flag: '--cluster-creds',
    env: 'PUBSUB_CLUSTER_CREDS',
    description:
      'A NATS credentials file (.creds: user JWT and NKey seed) for the link to --cluster; empty: connect without credentials.',
  },
  clusterTlsCa: {
    kind: 'string',
    allowed: 'path',
    default: '',
    flag: '--cluster-tls-ca',
    env: 'PUBSUB_CLUSTER_TLS_CA',
    description:
      "PEM CA bundle that the NATS servers' certificates chain to; given, the link to --cluster requires TLS. Empty: TLS only for tls:// URLs, verified against the system CAs.",
  },
  clusterReplicas: {
    kind: 'int',
    default: 0,
    min: 0,
    max: 5,
    flag: '--cluster-replicas',
    env: 'PUBSUB_CLUSTER_REPLICAS',
    description:
      "Replicas of the cluster's JetStream buckets and streams (control plane, retained messages, wills, session journal), each created by the first node that needs it (an existing one is used as it is). 0 (default): 3 when the NATS servers the node connects to form a cluster of three or more, else 1.",
  },
  httpPort: {
    kind: 'int',
    default: 8080,
    min: -1,
    max: 65535,
    flag: '--http-port',
    env: 'PUBSUB_HTTP_PORT',
    description: 'Admin REST API port (0: the OS picks one; -1: no API listener).',
  },
  apiBodyLimit: {
    kind: 'int',
    default: 65536,
    min: 1024,
    max: 16 * 1024 * 1024,
    flag: '--api-body-limit',
    env: 'PUBSUB_API_BODY_LIMIT',
    description: 'Largest admin API request body, in bytes (larger: HTTP 413).',
  },
  apiRequestTimeoutMs: {
    kind: 'int',
    default: 30_000,
    min: 100,
    max: 600_000,
    flag: '--api-request-timeout-ms',
    env: 'PUBSUB_API_REQUEST_TIMEOUT_MS',
    description:
      'Admin API: time a client has to send one whole request, headers and body (slower: HTTP 408 and closed).',
  },
  apiIdleTimeoutMs: {
    kind: 'int',
    default: 30_000,
    min: 100,
    max: 600_000,
    flag: '--api-idle-timeout-ms',
    env: 'PUBSUB_API_IDLE_TIMEOUT_MS',
    description: 'Admin API: a connection that sends and receives nothing for this long is closed.',
  },
  apiKeepAliveTimeoutMs: {
    kind: 'int',
    default: 10_000,
    min: 100,
    max: 600_000,
    flag: '--api-keep-alive-timeout-ms',
    env: 'PUBSUB_API_KEEP_ALIVE_TIMEOUT_MS',
    description: 'Admin API: how long an idle keep-alive connection waits for its next request.',
  },
  apiTrustProxy: {
    kind: 'string',
    allowed: 'address/prefix list',
    default: '',
    flag: '--api-trust-proxy',
    env: 'PUBSUB_API_TRUST_PROXY',
    description:
      "Admin API: comma-separated address/prefix list of the proxies you run in front of it. From those peers the client address (for API tokens' request_ip conditions) is taken from X-Forwarded-For, right to left past the trusted entries; from any other peer the header is ignored.",
  },
  auditRetention: {
    kind: 'string',
    default: '90d',
    flag: '--audit-retention',
    env: 'PUBSUB_AUDIT_RETENTION',
    allowed: 'duration',
    description:
      'Admin API audit log: how long an entry is kept (a duration: 90d, 12h, 1w; at least 1s). Older entries are pruned at start and periodically, and never served (docs/security.md).',
  },
  livezMaxStallMs: {
    kind: 'int',
    default: 5_000,
    min: 10,
    max: 600_000,
    flag: '--livez-max-stall-ms',
    env: 'PUBSUB_LIVEZ_MAX_STALL_MS',
    description:
      'GET /livez answers 503 for 10 s after the event loop stalled longer than this, in ms (docs/observability.md).',
  },
  metricsToken: {
    kind: 'string',
    default: '',
    flag: '--metrics-token',
    env: 'PUBSUB_METRICS_TOKEN',
    allowed: 'secret',
    description:
      'Bearer token GET /metrics requires (Authorization: Bearer <token>); empty: scraped without a token (docs/observability.md).',
  },
  traceMaxDuration: {
    kind: 'int',
    default: 3600,
    min: 1,
    max: 86_400,
    flag: '--trace-max-duration',
    env: 'PUBSUB_TRACE_MAX_DURATION',
    description:
      'Longest packet trace (GET .../brokers/{broker}/trace?duration=) in seconds; a longer duration is refused (docs/observability.md).',
  },
  traceBufferBytes: {
    kind: 'int',
    default: 1_048_576,
    min: 4096,
    max: 67_108_864,
    flag: '--trace-buffer-bytes',
    env: 'PUBSUB_TRACE_BUFFER_BYTES',
    description:
      'Bytes a packet trace may hold for a reader that is behind; past it events are skipped and the count reported in the stream (docs/observability.md).',
  },
  quietToken: {
    kind: 'bool',
    default: false,
    flag: '--quiet-token',
    env: 'PUBSUB_QUIET_TOKEN',
    description:
      'Never print the bootstrap admin token, only the file holding it (it is printed only when stdout is a terminal, or the data dir is :memory:).',
  },
  domain: {
    kind: 'string',
    default: 'localhost',
    flag: '--domain',
    env: 'PUBSUB_DOMAIN',
    description:
      'Brokers are reached as <broker>.<namespace>.<domain> (TLS SNI or WebSocket Host); also used in endpoints.',
  },
  defaultBroker: {
    kind: 'string',
    default: 'default.local',
    flag: '--default-broker',
    env: 'PUBSUB_DEFAULT_BROKER',
    description:
      'Broker (<broker>.<namespace>) serving connections that name none (by host name, token audience or user name).',
  },
  allowAnonymous: {
    kind: 'string',
    default: 'auto',
    choices: ['auto', 'true', 'false'],
    flag: '--allow-anonymous',
    env: 'PUBSUB_ALLOW_ANONYMOUS',
    description:
      'Whether brokers with authType NONE admit clients; auto: only when --host is a loopback address and neither --proxy-protocol nor --ws-trust-proxy says a proxy publishes the server.',
  },
  maxNamespacesPerAccount: {
    kind: 'int',
    default: 1000,
    min: 1,
    max: 1_000_000,
    flag: '--max-namespaces-per-account',
    env: 'PUBSUB_MAX_NAMESPACES_PER_ACCOUNT',
    description: 'Namespace quota of an account (over it: HTTP 400, code 14007).',
  },
  maxBrokersPerNamespace: {
    kind: 'int',
    default: 1000,
    min: 1,
    max: 1_000_000,
    flag: '--max-brokers-per-namespace',
    env: 'PUBSUB_MAX_BROKERS_PER_NAMESPACE',
    description: 'Broker quota of a namespace (over it: HTTP 400, code 14007).',
  },
  requireUsernameMatch: {
    kind: 'bool',
    default: false,
    flag: '--require-username-match',
    env: 'PUBSUB_REQUIRE_USERNAME_MATCH',
    description:
      'Token brokers: a non-empty MQTT user name must equal the client id (else CONNACK 0x86); off: ignored.',
  },
  maxRevocationsPerBroker: {
    kind: 'int',
    default: 10000,
    min: 1,
    max: 10_000_000,
    flag: '--max-revocations-per-broker',
    env: 'PUBSUB_MAX_REVOCATIONS_PER_BROKER',
    description: 'Revoked token ids a broker keeps (over it: HTTP 400, code 14007).',
  },
  jwtClockSkew: {
    kind: 'int',
    default: 0,
    min: 0,
    max: 300,
    flag: '--jwt-clock-skew',
    env: 'PUBSUB_JWT_CLOCK_SKEW',
    description:
      "Token brokers: seconds of clock difference allowed when checking a client token's exp and nbf (a token is refused from exp + skew on, and until nbf - skew). This server issues and checks tokens with one clock, so 0 fits unless tokens are minted elsewhere.",
  },
  mtlsClientIdPattern: {
    kind: 'string',
    allowed: 'regular expression',
    default: '',
    flag: '--mtls-client-id-pattern',
    env: 'PUBSUB_MTLS_CLIENT_ID_PATTERN',
    description:
      "Certificate brokers: a regular expression the client certificate's CN must match; the client id is its first capture group (the whole CN without one). Empty: the client id is the CN. The default of brokers without their own mtls_client_id_pattern.",
  },
  mtlsAndToken: {
    kind: 'string',
    default: 'either',
    choices: ['either', 'both'],
    flag: '--mtls-and-token',
    env: 'PUBSUB_MTLS_AND_TOKEN',
    description:
      "MTLS_AND_TOKEN brokers: `either` admits a verified certificate or a token; `both` requires both, the token's sub equal to the certificate's client id.",
  },
  authFailureLimit: {
    kind: 'int',
    default: 20,
    min: 0,
    max: 1_000_000,
    flag: '--auth-failure-limit',
    env: 'PUBSUB_AUTH_FAILURE_LIMIT',
    description:
      'Failed authentications (admin API tokens, MQTT CONNECT credentials) from one address (IPv6: one /64) within --auth-failure-window that ban it for --auth-ban-time (API: HTTP 429 with Retry-After; MQTT: CONNACK 0x8A, v3 0x05). From half of it on, each failure is answered after a growing delay. Loopback is not exempt. 0: off.',
  },
  authFailureWindow: {
    kind: 'int',
    default: 600_000,
    min: 1000,
    max: 86_400_000,
    flag: '--auth-failure-window',
    env: 'PUBSUB_AUTH_FAILURE_WINDOW',
    description: 'Milliseconds over which --auth-failure-limit failures are counted, from the first one.',
  },
  authBanTime: {
    kind: 'int',
    default: 900_000,
    min: 1000,
    max: 86_400_000,
    flag: '--auth-ban-time',
    env: 'PUBSUB_AUTH_BAN_TIME',
    description:
      'Milliseconds an address that reached --auth-failure-limit is refused, right credentials or wrong.',
  },
  authFailureDelay: {
    kind: 'int',
    default: 250,
    min: 0,
    max: 5000,
    flag: '--auth-failure-delay',
    env: 'PUBSUB_AUTH_FAILURE_DELAY',
    description:
      'Milliseconds the first slowed failure waits for its answer (once half of --auth-failure-limit is used); doubles with each further failure, at most 5000. 0: no delays.',
  },
  hookBatchSize: {
    kind: 'int',
    default: 100,
    min: 1,
    max: 10000,
    flag: '--hook-batch-size',
    env: 'PUBSUB_HOOK_BATCH_SIZE',
    description: 'On-publish hooks: most messages in one webhook request or function call.',
  },
  hookBatchMax: {
    kind: 'int',
    default: 1000,
    min: 1,
    max: 100000,
    flag: '--hook-batch-max',
    env: 'PUBSUB_HOOK_BATCH_MAX',
    description:
      'Webhooks: most messages in one request made of batches that waited for a free call (all --hook-concurrency in flight), sent together; at most --hook-batch-size: never merged.',
  },
  hookBatchWindowMs: {
    kind: 'int',
    default: 2,
    min: 0,
    max: 1000,
    flag: '--hook-batch-window-ms',
    env: 'PUBSUB_HOOK_BATCH_WINDOW_MS',
    description:
      'On-publish hooks: how long a batch waits for more messages after its first, in ms (0: only messages of the same event-loop turn).',
  },
  hookConcurrency: {
    kind: 'int',
    default: 4,
    min: 1,
    max: 256,
    flag: '--hook-concurrency',
    env: 'PUBSUB_HOOK_CONCURRENCY',
    description:
      'On-publish hooks: calls in flight at once per broker; decisions are still released in arrival order.',
  },
  hookMaxPending: {
    kind: 'int',
    default: 10000,
    min: 1,
    max: 10000000,
    flag: '--hook-max-pending',
    env: 'PUBSUB_HOOK_MAX_PENDING',
    description:
      'On-publish hooks: messages waiting for a decision per broker; at this many, publishers stop being read until half have been decided.',
  },
  hookTimeoutMs: {
    kind: 'int',
    default: 10000,
    min: 1,
    max: 600000,
    flag: '--hook-timeout-ms',
    env: 'PUBSUB_HOOK_TIMEOUT_MS',
    description:
      "Webhook: time for one call, retries included (Cloudflare's 10 s); a broker's on_publish.timeout_ms overrides it.",
  },
  hookRetries: {
    kind: 'int',
    default: 2,
    min: 0,
    max: 10,
    flag: '--hook-retries',
    env: 'PUBSUB_HOOK_RETRIES',
    description:
      'Webhook: extra attempts when the hook surely did not process the batch (connection refused, HTTP 429 or 503).',
  },
  hookAck: {
    kind: 'string',
    default: 'after',
    choices: ['after', 'before'],
    flag: '--hook-ack',
    env: 'PUBSUB_HOOK_ACK',
    description:
      'On-publish hooks: send PUBACK/PUBREC after the hook decided and the message was routed (nothing acknowledged is lost), or before it (lowest latency).',
  },
  hookMaxResponseBytes: {
    kind: 'int',
    default: 16777216,
    min: 1024,
    max: 1073741824,
    flag: '--hook-max-response-bytes',
    env: 'PUBSUB_HOOK_MAX_RESPONSE_BYTES',
    description: 'Webhook: largest answer body read; a larger one fails the call.',
  },
  hookAllowPrivate: {
    kind: 'bool',
    default: false,
    flag: '--hook-allow-private',
    env: 'PUBSUB_HOOK_ALLOW_PRIVATE',
    description:
      'Webhook: let on_publish.url reach private networks (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7, fec0::/10, 64:ff9b:1::/48). This machine follows --hook-allow-loopback; link-local and metadata addresses still need --hook-allow-cidrs.',
  },
  hookAllowLoopback: {
    kind: 'string',
    default: 'auto',
    choices: ['auto', 'true', 'false'],
    flag: '--hook-allow-loopback',
    env: 'PUBSUB_HOOK_ALLOW_LOOPBACK',
    description:
      "Webhook: let on_publish.url reach this machine (loopback and the machine's own addresses). auto: only while --host is loopback and neither --proxy-protocol nor --ws-trust-proxy says a proxy exposes the server; set false when a reverse proxy on this machine publishes it.",
  },
  hookAllowCidrs: {
    kind: 'string',
    allowed: 'address/prefix list',
    default: '',
    flag: '--hook-allow-cidrs',
    env: 'PUBSUB_HOOK_ALLOW_CIDRS',
    description:
      'Webhook: comma-separated address/prefix list on_publish.url may reach whatever the address (e.g. 10.1.0.0/16,fd12::/64). It opens any class, link-local and metadata included; this machine is also opened by --hook-allow-loopback.',
  },
  hookWorkers: {
    kind: 'int',
    default: 0,
    min: 0,
    max: 256,
    flag: '--hook-workers',
    env: 'PUBSUB_HOOK_WORKERS',
    description:
      "Sandboxed functions: worker threads the functions run in, started at the first deployment; a broker's function runs on one of them (0: one per core, os.availableParallelism()).",
  },
  functionMemoryMb: {
    kind: 'int',
    default: 32,
    min: 16,
    max: 1024,
    flag: '--function-memory-mb',
    env: 'PUBSUB_FUNCTION_MEMORY_MB',
    description:
      "Sandboxed functions: memory limit of a broker's function, in MiB; a call over it is stopped.",
  },
  functionCpuMs: {
    kind: 'int',
    default: 100,
    min: 1,
    max: 60000,
    flag: '--function-cpu-ms',
    env: 'PUBSUB_FUNCTION_CPU_MS',
    description: 'Sandboxed functions: time one call may run, in ms; a call over it is stopped.',
  },
  functionStateBytes: {
    kind: 'int',
    default: 1048576,
    min: 0,
    max: 1073741824,
    flag: '--function-state-bytes',
    env: 'PUBSUB_FUNCTION_STATE_BYTES',
    description:
      "Sandboxed functions: bytes of key-value state (keys and values) a broker's function may keep.",
  },
  functionMaxCodeBytes: {
    kind: 'int',
    default: 1048576,
    min: 1,
    max: 16777216,
    flag: '--function-max-code-bytes',
    env: 'PUBSUB_FUNCTION_MAX_CODE_BYTES',
    description: 'Sandboxed functions: largest module accepted at deployment.',
  },
  functionPublishRate: {
    kind: 'int',
    default: 1000,
    min: 0,
    max: 1000000,
    flag: '--function-publish-rate',
    env: 'PUBSUB_FUNCTION_PUBLISH_RATE',
    description:
      "Sandboxed functions: derived messages (ctx.publish) per second per broker, shared by all its function's calls; past it ctx.publish throws (0: disabled).",
  },
  functionPublishBytesRate: {
    kind: 'int',
    default: 1048576,
    min: 0,
    max: 1073741824,
    flag: '--function-publish-bytes-rate',
    env: 'PUBSUB_FUNCTION_PUBLISH_BYTES_RATE',
    description:
      'Sandboxed functions: topic and payload bytes of derived messages per second per broker; past it ctx.publish throws (0: disabled).',
  },
  functionPublishBurstMs: {
    kind: 'int',
    default: 1000,
    min: 1,
    max: 60000,
    flag: '--function-publish-burst-ms',
    env: 'PUBSUB_FUNCTION_PUBLISH_BURST_MS',
    description:
      'Sandboxed functions: burst of the derived-publish budget, in ms of its rates (also the largest derived message: bytes rate × burst).',
  },
  logLevel: {
    kind: 'string',
    default: 'info',
    choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
    flag: '--log-level',
    env: 'PUBSUB_LOG_LEVEL',
    description:
      'pino log level: client events (connect, disconnect, subscribe, unsubscribe, takeover) at info, authentication failures and protocol errors at warn.',
  },
  clientEvents: {
    kind: 'bool',
    default: false,
    flag: '--client-events',
    env: 'PUBSUB_CLIENT_EVENTS',
    description:
      'Publish each client connect and disconnect as JSON on $SYS/brokers/<broker>/clients/<clientId>/connected|disconnected (QoS 0, not retained; docs/observability.md).',
  },
  sysInterval: {
    kind: 'int',
    default: 10,
    min: 0,
    max: 86_400,
    flag: '--sys-interval',
    env: 'PUBSUB_SYS_INTERVAL',
    description:
      "Seconds between updates of each broker's $SYS/broker/... statistics topics (mosquitto's names, retained; docs/observability.md); 0: no $SYS tree.",
  },
  maximumPacketSize: {
    kind: 'int',
    default: 1_048_576,
    min: 64,
    max: 268_435_460,
    flag: '--max-packet-size',
    env: 'PUBSUB_MAX_PACKET_SIZE',
    description:
      'Largest packet accepted from a client, in bytes; advertised in the v5 CONNACK. Larger: DISCONNECT 0x95.',
  },
  maxConnectPacketSize: {
    kind: 'int',
    default: 65_536,
    min: 256,
    max: 268_435_460,
    flag: '--max-connect-packet-size',
    env: 'PUBSUB_MAX_CONNECT_PACKET_SIZE',
    description:
      'Largest packet accepted before CONNECT is accepted (the CONNECT, and AUTH during enhanced authentication), in bytes; never above --max-packet-size. Larger: v5 CONNACK 0x95, v3 close.',
  },
  receiveMaximum: {
    kind: 'int',
    default: 1024,
    min: 1,
    max: 65535,
    flag: '--receive-maximum',
    env: 'PUBSUB_RECEIVE_MAXIMUM',
    description:
      'Inbound QoS 2 messages a client may have unreleased at once; advertised in the v5 CONNACK. More: 0x93.',
  },
  maxInflightMessages: {
    kind: 'int',
    default: 1024,
    min: 1,
    max: 65535,
    flag: '--max-inflight',
    env: 'PUBSUB_MAX_INFLIGHT',
    description:
      "Outbound QoS 1/2 messages in flight per client (further capped by a v5 client's Receive Maximum).",
  },
  maxQueuedMessages: {
    kind: 'int',
    default: 1000,
    min: 0,
    max: 10_000_000,
    flag: '--max-queued-messages',
    env: 'PUBSUB_MAX_QUEUED_MESSAGES',
    description:
      'QoS 1/2 messages queued per session beyond those in flight; newer ones are dropped and counted.',
  },
  maxQueuedBytes: {
    kind: 'int',
    default: 16_777_216,
    min: 0,
    max: 2 ** 40,
    flag: '--max-queued-bytes',
    env: 'PUBSUB_MAX_QUEUED_BYTES',
    description:
      'Bytes queued per session, each message counted whole (topic, properties and payload); newer messages over it are dropped and counted.',
  },
  queueOverflow: {
    kind: 'string',
    default: 'drop-newest',
    choices: ['drop-newest', 'drop-oldest'],
    flag: '--queue-overflow',
    env: 'PUBSUB_QUEUE_OVERFLOW',
    description:
      'Which message a full session queue drops: the arriving one, or the oldest queued ones to make room. Either way counted per broker.',
  },
  maxRetainedMessages: {
    kind: 'int',
    default: 1_000_000,
    min: 0,
    max: 100_000_000,
    flag: '--max-retained-messages',
    env: 'PUBSUB_MAX_RETAINED_MESSAGES',
    description:
      'Retained messages kept per broker; a retained message for a new topic beyond it is delivered but not retained, and counted.',
  },
  maxRetainedBytes: {
    kind: 'int',
    default: 1_073_741_824,
    min: 0,
    max: 2 ** 40,
    flag: '--max-retained-bytes',
    env: 'PUBSUB_MAX_RETAINED_BYTES',
    description:
      'Bytes of retained messages kept per broker, each counted whole (topic, properties and payload); a retained message that would exceed it is delivered but not retained, and counted.',
  },
  storeBatchMs: {
    kind: 'int',
    default: 5,
    min: 0,
    max: 1000,
    flag: '--store-batch-ms',
    env: 'PUBSUB_STORE_BATCH_MS',
    description:
      'Group commit window of the message store, in ms (0: once per event-loop turn). PUBACK/PUBREC for messages to persistent sessions or retained wait for it.',
  },
  maxWriteBufferBytes: {
    kind: 'int',
    default: 4_194_304,
    min: 4096,
    max: 2 ** 31,
    flag: '--max-write-buffer',
    env: 'PUBSUB_MAX_WRITE_BUFFER',
    description:
      'Unsent bytes per connection before it counts as congested: QoS 0 is then dropped (counted), QoS 1/2 queued.',
  },
  maxTotalWriteBufferBytes: {
    kind: 'int',
    default: 268_435_456,
    min: 65_536,
    max: 2 ** 40,
    flag: '--max-total-write-buffer',
    env: 'PUBSUB_MAX_TOTAL_WRITE_BUFFER',
    description:
      'Unsent bytes of all connections together before QoS 0 to the most congested ones (backlog at or above the average) is shed (counted as write_budget) and their QoS 1/2 queued.',
  },
  maxCongestedMs: {
    kind: 'int',
    default: 60_000,
    min: 0,
    max: 86_400_000,
    flag: '--max-congested-ms',
    env: 'PUBSUB_MAX_CONGESTED_MS',
    description:
      'A connection whose unsent bytes stay over --max-write-buffer this long without draining is disconnected (v5 DISCONNECT 0x97 Quota exceeded); 0 never.',
  },
  maximumQoS: {
    kind: 'int',
    default: 2,
    min: 0,
    max: 2,
    flag: '--max-qos',
    env: 'PUBSUB_MAX_QOS',
    description:
      'Highest QoS granted to subscriptions and accepted from publishers (advertised to v5 when below 2; above it: v5 0x9B, v3 close).',
  },
  retainAvailable: {
    kind: 'bool',
    default: true,
    flag: '--retain',
    env: 'PUBSUB_RETAIN',
    description: 'Whether retained messages are kept (v5 publishers get 0x9A when off).',
  },
  maxTopicLevels: {
    kind: 'int',
    default: 200,
    min: 1,
    // A 65,535-byte topic of `/` has 65,536 levels: the most there can be, so this is no bound.
    max: 65_536,
    flag: '--max-topic-levels',
    env: 'PUBSUB_MAX_TOPIC_LEVELS',
    description:
      'Most levels in a topic name or filter ($share/{name}/ not counted). More: that filter gets SUBACK 0x8F (v3 0x80); a PUBLISH PUBACK/PUBREC 0x90 (QoS 0: DISCONNECT 0x90; v3: close); a will CONNACK 0x90 (v3: close). docs/mqtt5.md#limits-on-topics.',
  },
  maxTopicLength: {
    kind: 'int',
    // AWS IoT Core allows 256 bytes; mosquitto and EMQX only the protocol's 65,535. 1 KiB leaves
    // four times the room of the strictest service for deep paths and still keeps one topic, held
    // in every index node, retained message and queued delivery, small.
    default: 1024,
    min: 16,
    max: 65_535,
    flag: '--max-topic-length',
    env: 'PUBSUB_MAX_TOPIC_LENGTH',
    description:
      'Longest topic name or filter, in UTF-8 bytes. Longer: that filter gets SUBACK 0x8F (v3 0x80); a PUBLISH PUBACK/PUBREC 0x90 (QoS 0: DISCONNECT 0x90; v3: close); a will CONNACK 0x90 (v3: close). docs/limits.md.',
  },
  maxSubscriptionsPerClient: {
    kind: 'int',
    default: 10_000,
    min: 1,
    max: 10_000_000,
    flag: '--max-subscriptions-per-client',
    env: 'PUBSUB_MAX_SUBSCRIPTIONS_PER_CLIENT',
    description:
      'Subscriptions one session may hold (re-subscribing to a held filter does not count again). More: that filter gets SUBACK 0x97 (v3 0x80). docs/limits.md.',
  },
  maxFiltersPerSubscribe: {
    kind: 'int',
    // As many as a client may hold, so that a client (MQTT.js, for one) re-establishing all of
    // its subscriptions in one SUBSCRIBE after a reconnect is never refused.
    default: 10_000,
    min: 1,
    max: 10_000_000,
    flag: '--max-filters-per-subscribe',
    env: 'PUBSUB_MAX_FILTERS_PER_SUBSCRIBE',
    description:
      'Topic filters in one SUBSCRIBE, refused while it is decoded, before the rest is read. More: v5 DISCONNECT 0x97, v3 close. docs/limits.md.',
  },
  maxUserProperties: {
    kind: 'int',
    default: 128,
    min: 0,
    max: 1_000_000,
    flag: '--max-user-properties',
    env: 'PUBSUB_MAX_USER_PROPERTIES',
    description:
      'User Property pairs in one property block of any v5 packet (a will has its own block), counted while decoding. More: CONNECT CONNACK 0x95, any other packet DISCONNECT 0x95. docs/limits.md.',
  },
  maxPropertiesBytes: {
    kind: 'int',
    // Room for any one property at its largest (a string or binary value is at most 65,535
    // bytes) and the rest of an ordinary block beside it.
    default: 131_072,
    min: 64,
    max: 268_435_455,
    flag: '--max-properties-bytes',
    env: 'PUBSUB_MAX_PROPERTIES_BYTES',
    description:
      'Bytes of one property block of any v5 packet, refused from its length before it is read. More: CONNECT CONNACK 0x95, any other packet DISCONNECT 0x95. docs/limits.md.',
  },
  maxWillBytes: {
    kind: 'int',
    default: 65_536,
    min: 16,
    max: 268_435_455,
    flag: '--max-will-bytes',
    env: 'PUBSUB_MAX_WILL_BYTES',
    description:
      "A CONNECT's will as encoded (properties, topic and payload with their length fields), in bytes. More: v5 CONNACK 0x95, v3 close. docs/limits.md.",
  },
  topicAliasMaximum: {
    kind: 'int',
    default: 64,
    min: 0,
    max: 65535,
    flag: '--topic-alias-maximum',
    env: 'PUBSUB_TOPIC_ALIAS_MAXIMUM',
    description: 'Inbound topic aliases a v5 client may use per connection (0 disables).',
  },
  outboundTopicAliases: {
    kind: 'int',
    default: 0,
    min: 0,
    max: 65535,
    flag: '--outbound-topic-aliases',
    env: 'PUBSUB_OUTBOUND_TOPIC_ALIASES',
    description:
      "Topic aliases the server assigns per v5 connection (least recently used replaced), never more than the client's Topic Alias Maximum (0: off).",
  },
  sharedSubscriptionsAvailable: {
    kind: 'bool',
    default: true,
    flag: '--shared-subscriptions',
    env: 'PUBSUB_SHARED_SUBSCRIPTIONS',
    description:
      'Whether $share/{group}/{filter} subscriptions are offered (off: advertised to v5, DISCONNECT 0x9E on use).',
  },
  sharedSubscriptionStrategy: {
    kind: 'string',
    default: 'round-robin',
    choices: ['round-robin', 'random', 'publisher-hash'],
    flag: '--shared-strategy',
    env: 'PUBSUB_SHARED_STRATEGY',
    description:
      "Which member of a shared group gets a message: in turn, at random, or by a hash of the publisher's client id (one publisher's messages stay on one member while it is connected).",
  },
  wildcardSubscriptionsAvailable: {
    kind: 'bool',
    default: true,
    flag: '--wildcard-subscriptions',
    env: 'PUBSUB_WILDCARD_SUBSCRIPTIONS',
    description:
      'Whether filters with + or # are accepted (off: advertised to v5, DISCONNECT 0xA2 on use; v3 SUBACK 0x80).',
  },
  subscriptionIdentifiersAvailable: {
    kind: 'bool',
    default: true,
    flag: '--subscription-identifiers',
    env: 'PUBSUB_SUBSCRIPTION_IDENTIFIERS',
    description:
      'Whether v5 Subscription Identifiers are accepted (off: advertised, DISCONNECT 0xA1 on use).',
  },
  validatePayloadFormat: {
    kind: 'bool',
    default: true,
    flag: '--validate-payload-format',
    env: 'PUBSUB_VALIDATE_PAYLOAD_FORMAT',
    description:
      'Check that a v5 PUBLISH or will with Payload Format Indicator 1 carries valid UTF-8 (invalid: PUBACK/PUBREC 0x99, QoS 0 DISCONNECT 0x99, will CONNACK 0x99).',
  },
  responseInformation: {
    kind: 'string',
    default: 'response/{clientId}/',
    flag: '--response-information',
    env: 'PUBSUB_RESPONSE_INFORMATION',
    description:
      'Response Information sent in CONNACK to v5 clients that ask for it ({clientId} is replaced; empty: never sent).',
  },
  maxPublishRate: {
    kind: 'int',
    default: 0,
    min: 0,
    max: 1_000_000,
    flag: '--max-publish-rate',
    env: 'PUBSUB_MAX_PUBLISH_RATE',
    description:
      'PUBLISH packets per second one connection may send, with a burst of as many (0: unlimited). More: --publish-rate-action. The default of brokers without their own limits.max_client_messages_per_second; docs/limits.md.',
  },
  maxPublishBytesRate: {
    kind: 'int',
    default: 0,
    min: 0,
    max: 2 ** 40,
    flag: '--max-publish-bytes-rate',
    env: 'PUBSUB_MAX_PUBLISH_BYTES_RATE',
    description:
      'PUBLISH payload bytes per second one connection may send, with a burst of as many (0: unlimited). More: --publish-rate-action. The default of brokers without their own limits.max_client_bytes_per_second.',
  },
  maxBrokerPublishRate: {
    kind: 'int',
    default: 0,
    min: 0,
    max: 100_000_000,
    flag: '--max-broker-publish-rate',
    env: 'PUBSUB_MAX_BROKER_PUBLISH_RATE',
    description:
      "PUBLISH packets per second all of one broker's clients together may send, with a burst of as many (0: unlimited). More: --publish-rate-action for the client that went over. The default of brokers without their own limits.max_messages_per_second.",
  },
  maxBrokerPublishBytesRate: {
    kind: 'int',
    default: 0,
    min: 0,
    max: 2 ** 40,
    flag: '--max-broker-publish-bytes-rate',
    env: 'PUBSUB_MAX_BROKER_PUBLISH_BYTES_RATE',
    description:
      "PUBLISH payload bytes per second all of one broker's clients together may send, with a burst of as many (0: unlimited). The default of brokers without their own limits.max_bytes_per_second.",
  },
  publishRateAction: {
    kind: 'string',
    default: 'throttle',
    choices: ['throttle', 'disconnect'],
    flag: '--publish-rate-action',
    env: 'PUBSUB_PUBLISH_RATE_ACTION',
    description:
      'What a client over an inbound rate gets: throttle (its input is not read until the budget refills; it is never disconnected) or disconnect (v5 DISCONNECT 0x96 Message rate too high, v3 close). The default of brokers without their own limits.rate_limit_action.',
  },
  maxBrokerConnections: {
    kind: 'int',
    default: 0,
    min: 0,
    max: 100_000_000,
    flag: '--max-broker-connections',
    env: 'PUBSUB_MAX_BROKER_CONNECTIONS',
    description:
      'Connections one broker serves at once (0: unlimited; a takeover of a connected client id does not count twice). More: v5 CONNACK 0x97, v3 0x03. The default of brokers without their own limits.max_connections.',
  },
  maxConnections: {
    kind: 'int',
    default: 0,
    min: 0,
    max: 100_000_000,
    flag: '--max-connections',
    env: 'PUBSUB_MAX_CONNECTIONS',
    description:
      'Connections the process serves at once, over every listener and broker (0: unlimited). More: v5 CONNACK 0x97, v3 0x03; docs/limits.md.',
  },
  maxConnectionsPerAddress: {
    kind: 'int',
    default: 0,
    min: 0,
    max: 100_000_000,
    flag: '--max-connections-per-address',
    env: 'PUBSUB_MAX_CONNECTIONS_PER_ADDRESS',
    description:
      'Connections one client address may hold at once (the PROXY or X-Forwarded-For address when trusted; 0: unlimited). More: v5 CONNACK 0x97, v3 0x03.',
  },
  listenBacklog: {
    kind: 'int',
    default: 4096,
    min: 1,
    max: 65_535,
    flag: '--listen-backlog',
    env: 'PUBSUB_LISTEN_BACKLOG',
    description:
      "Connections the kernel holds for each MQTT listener (TCP, TLS, WebSocket) before the server accepts them (listen(2)'s backlog; Linux caps it at net.core.somaxconn). Node's default, 511, overflowed in a storm of 20,000 connects while the event loop was busy: clients saw resets and had to retry.",
  },
  maxConnectionRate: {
    kind: 'int',
    default: 0,
    min: 0,
    max: 1_000_000,
    flag: '--max-connection-rate',
    env: 'PUBSUB_MAX_CONNECTION_RATE',
    description:
      'New connections per second each listener takes on (0: unpaced). Faster arrivals wait, unread, and are taken in turn; one that waited longer than --connect-timeout is closed.',
  },
  maxClientConnectRate: {
    kind: 'int',
    default: 10,
    min: 0,
    max: 1_000_000,
    flag: '--max-client-connect-rate',
    env: 'PUBSUB_MAX_CLIENT_CONNECT_RATE',
    description:
      'CONNECTs per second one client id of a broker may make, in bursts of as many (0: unlimited). More: v5 CONNACK 0x9F, v3 0x03, for a back-off that doubles with each repeat (1 s to 60 s).',
  },
  maxAddressConnectRate: {
    kind: 'int',
    default: 0,
    min: 0,
    max: 1_000_000,
    flag: '--max-address-connect-rate',
    env: 'PUBSUB_MAX_ADDRESS_CONNECT_RATE',
    description:
      'CONNECTs per second one client address (IPv6: its /64) may make, in bursts of as many, checked before authentication (0: unlimited). More: v5 CONNACK 0x9F, v3 0x03.',
  },
  maxMemory: {
    kind: 'int',
    default: 0,
    min: 0,
    max: 16_777_216,
    flag: '--max-memory',
    env: 'PUBSUB_MAX_MEMORY',
    description:
      "Resident memory, in MiB, above which the process is overloaded and refuses new connections (v5 CONNACK 0x89, v3 0x03) until it is back under 90 % of it (0: 80 % of the cgroup's memory.max, else of the machine's memory).",
  },
  maxEventLoopLag: {
    kind: 'int',
    default: 0,
    min: 0,
    max: 600_000,
    flag: '--max-event-loop-lag',
    env: 'PUBSUB_MAX_EVENT_LOOP_LAG',
    description:
      'Milliseconds of event-loop lag above which the process is overloaded, as for --max-memory (0: lag does not count).',
  },
  clientLogRate: {
    kind: 'int',
    default: 100,
    min: 0,
    max: 1_000_000,
    flag: '--client-log-rate',
    env: 'PUBSUB_CLIENT_LOG_RATE',
    description:
      'Connect, disconnect, takeover, refused-connect and bad-input (protocol error, invalid CONNECT) log lines per second (0: every one). Past it, lines are dropped and the next one logged says how many (`suppressed`).',
  },
  scramUsersFile: {
    kind: 'string',
    allowed: 'path',
    default: '',
    flag: '--scram-users',
    env: 'PUBSUB_SCRAM_USERS',
    description:
      'File of SCRAM-SHA-256 credentials (username:salt:iterations:storedKey:serverKey per line) enabling v5 enhanced authentication; see docs/mqtt5.md.',
  },
  maxKeepalive: {
    kind: 'int',
    default: 65535,
    min: 1,
    max: 65535,
    flag: '--max-keepalive',
    env: 'PUBSUB_MAX_KEEPALIVE',
    description:
      'Largest keep alive, in seconds. v5 clients asking more (or 0, when set below 65535) get Server Keep Alive; v3 clients asking more are refused (0x02).',
  },
  connectTimeout: {
    kind: 'int',
    default: 10_000,
    min: 100,
    max: 600_000,
    flag: '--connect-timeout',
    env: 'PUBSUB_CONNECT_TIMEOUT',
    description: 'Milliseconds a new connection has to send CONNECT before it is closed.',
  },
  maxSessionExpiryInterval: {
    kind: 'int',
    default: U32,
    min: 0,
    max: U32,
    flag: '--max-session-expiry',
    env: 'PUBSUB_MAX_SESSION_EXPIRY',
    description:
      'Cap on session expiry, in seconds (4294967295: never). Also the expiry of v3 clean-session-0 sessions.',
  },
  maxClientIdLength: {
    kind: 'int',
    default: 256,
    min: 23,
    max: 65535,
    flag: '--max-client-id-length',
    env: 'PUBSUB_MAX_CLIENT_ID_LENGTH',
    description: 'Longest client identifier accepted, in bytes (longer: CONNACK 0x85 / 0x02).',
  },
} as const satisfies Record<string, OptionDef>;

export type OptionKey = keyof typeof OPTIONS;
