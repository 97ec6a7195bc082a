/**
 * protocol/: the MQTT codec. Owns parsing and encoding of every control packet of MQTT 3.1,
 * 3.1.1 and 5.0, their properties and reason codes, and topic/filter validity rules.
 * Promises: pure (no I/O, nothing imported from the rest of src/), resumable parsing with
 * zero-copy payloads, malformed input reported as ProtocolError values with the v5 reason
 * code, never thrown past Parser.push.
 */
export * from './constants.ts';
export { encode, encodePublish, encodePublishFields, withPacketId } from './encoder.ts';
export type * from './packets.ts';
export { type PacketHandler, Parser, type ParserOptions, YIELD } from './parser.ts';
export { decodeProperties, propertiesLength, writeProperties, writeVarint } from './properties.ts';
export { type PacketLimit, ProtocolError } from './protocol-error.ts';
export { type PacketLimits, Reader } from './reader.ts';
export * from './topic.ts';
export { isValidMqttString, isValidMqttUtf8 } from './utf8.ts';
