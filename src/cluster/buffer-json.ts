/**
 * JSON that carries binary: every Buffer (or Uint8Array) as `{"$b": base64}`, turned back into a
 * Buffer when read. For the cluster's records that hold MQTT messages (a handed-over session,
 * a will kept for a node that may die); the data plane has its own binary codec (codec.ts).
 */
export function toBufferJson(value: unknown): Buffer {
  return Buffer.from(
    JSON.stringify(value, function (this: Record<string, unknown>, key, v) {
      const raw = this[key];
      return raw instanceof Uint8Array
        ? { $b: Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64') }
        : v;
    }),
  );
}

export function fromBufferJson(bytes: Uint8Array): unknown {
  return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString(), (_key, v) =>
    v !== null && typeof v === 'object' && typeof v.$b === 'string' ? Buffer.from(v.$b, 'base64') : v,
  );
}
