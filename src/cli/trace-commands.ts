/**
 * `pubsub broker trace <broker> --client-id X | --topic F`, over
 * `GET /client/v4/accounts/{account_id}/pubsub/namespaces/{ns}/brokers/{name}/trace` (a stream
 * of Server-Sent Events): prints each packet as it passes, one line each (`--json`: each event
 * as one JSON object per line, `event` naming it), until the server ends the trace (its
 * duration is up) or Ctrl-C. `--payload` adds payloads, cut to `--payload-bytes`.
 * What is traced and the end go to stderr as status lines; stdout holds only the packets.
 */
import { type Command, InvalidArgumentError } from 'commander';
import { brokerPath, type NamespaceFlag, withNamespace } from './broker-commands.ts';
import { UsageError } from './cli-error.ts';
import { type ApiFlags, connect } from './connection.ts';
import { print, status } from './output.ts';
import { durationArgument, verb, withApiOptions } from './verb.ts';

interface TraceFlags extends ApiFlags, NamespaceFlag {
  clientId?: string;
  topic?: string;
  payload?: boolean;
  payloadBytes?: number;
  /** Seconds. */
  duration?: number;
}

type Event = Record<string, unknown>;

/** `--payload-bytes`: a whole number from 1. */
function bytesArgument(value: string): number {
  const n = /^\s*\d+\s*$/.test(value) ? Number(value) : Number.NaN;
  if (!(n >= 1)) throw new InvalidArgumentError('must be a whole number from 1');
  return n;
}

const hex = (code: unknown): string => `0x${Number(code).toString(16).padStart(2, '0')}`;

/** One packet event as a line: time, direction, client, type, then what the packet carries. */
export function packetLine(e: Event): string {
  const parts = [String(e.time), String(e.direction).padEnd(3), String(e.client_id), String(e.type)];
  if (e.packet_id !== undefined) parts.push(`id=${e.packet_id}`);
  if (e.topic !== undefined) parts.push(`topic=${e.topic}`);
  if (e.qos !== undefined) parts.push(`qos=${e.qos}`);
  if (e.dup === true) parts.push('dup');
  if (e.retain === true) parts.push('retain');
  if (e.protocol_version !== undefined)
    parts.push(`v=${e.protocol_version}`, `clean=${e.clean_start}`, `keepalive=${e.keep_alive}`);
  if (typeof e.username === 'string') parts.push(`username=${e.username}`);
  if (e.session_present !== undefined) parts.push(`session_present=${e.session_present}`);
  if (e.reason_code !== undefined) parts.push(`rc=${hex(e.reason_code)}`);
  if (Array.isArray(e.reason_codes)) parts.push(`rc=[${e.reason_codes.map(hex).join(',')}]`);
  if (Array.isArray(e.subscriptions))
    parts.push(
      `filters=${(e.subscriptions as { filter: string; qos: number }[]).map((s) => `${s.filter}@${s.qos}`).join(',')}`,
    );
  if (Array.isArray(e.filters)) parts.push(`filters=${e.filters.join(',')}`);
  if (e.will !== undefined) parts.push(`will=${JSON.stringify(e.will)}`);
  if (e.properties !== undefined) parts.push(`props=${JSON.stringify(e.properties)}`);
  if (e.payload_size !== undefined) parts.push(`bytes=${e.payload_size}`);
  if (typeof e.payload === 'string') {
    const shown = e.payload_encoding === 'utf8' ? JSON.stringify(e.payload) : `base64:${e.payload}`;
    parts.push(`payload=${shown}${e.payload_truncated === true ? '…' : ''}`);
  }
  return parts.join(' ');
}

export function addTraceCommands(broker: Command): void {
  withApiOptions(
    withNamespace(
      broker
        .command('trace <broker>')
        .description("print a client's packets, or a topic filter's PUBLISH packets, live as they pass")
        .option('--client-id <id>', 'trace this client: every packet in and out')
        .option('--topic <filter>', 'trace PUBLISH packets (in and out) whose topic this MQTT filter matches')
        .option('--payload', 'show payloads (text, else base64)')
        .option(
          '--payload-bytes <n>',
          'with --payload: at most this many bytes of each (default 256)',
          bytesArgument,
        )
        .option(
          '--duration <duration>',
          'how long: 90, 30m, 1h (default 60 s; the server has a maximum)',
          durationArgument,
        ),
    ),
  ).action(
    verb<TraceFlags>(async ([name], flags) => {
      if ((flags.clientId === undefined) === (flags.topic === undefined))
        throw new UsageError('give exactly one of --client-id and --topic');
      if (flags.payloadBytes !== undefined && flags.payload !== true)
        throw new UsageError('--payload-bytes needs --payload');
      const query: Record<string, string> = {};
      if (flags.clientId !== undefined) query.client_id = flags.clientId;
      if (flags.topic !== undefined) query.topic = flags.topic;
      if (flags.payload === true) query.payload = 'true';
      if (flags.payloadBytes !== undefined) query.payload_bytes = String(flags.payloadBytes);
      if (flags.duration !== undefined) query.duration = String(flags.duration);
      const api = await connect(flags);
      const stop = new AbortController();
      const interrupted = (): void => stop.abort();
      process.once('SIGINT', interrupted);
      try {
        await api.client.events(
          api.accountPath(`${brokerPath(flags.namespace, name!)}/trace`),
          { query },
          (event, data) => show(event, data as Event, flags.json === true),
          stop.signal,
        );
      } finally {
        process.off('SIGINT', interrupted);
      }
      if (stop.signal.aborted) status('Trace stopped.');
    }),
  );
}

function show(event: string, data: Event, json: boolean): void {
  if (json) {
    print(`${JSON.stringify({ event, ...data })}\n`);
    return;
  }
  switch (event) {
    case 'packet':
      return print(`${packetLine(data)}\n`);
    case 'start':
      return status(
        `Tracing ${data.client_id === undefined ? `topic ${data.topic}` : `client ${data.client_id}`} on broker ${data.broker} until ${data.ends_at} (Ctrl-C to stop).`,
      );
    case 'skipped':
      return status(`${data.skipped} packets skipped: this reader was behind.`);
    case 'end':
      return status(`Trace ended (${data.reason}): ${data.events} packets, ${data.skipped} skipped.`);
  }
}
