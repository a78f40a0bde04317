/**
 * The BadBatch client for TypeScript and JavaScript (Node 20+ and browsers).
 * Docs: docs/clients/typescript.md.
 */
export { Client, Tail } from "./client.js";
export { decodeRecord } from "./client.js";
export { VERSION, DEFAULTS, type ClientOptions, type ResolvedOptions } from "./options.js";
export * from "./errors.js";
export type * from "./types.js";
export { encodeBase64, decodeBase64 } from "./base64.js";
