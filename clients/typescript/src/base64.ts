// Standard-alphabet, padded base64 without Node's Buffer, so that the same
// code runs in browsers.

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const DECODE = new Int16Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) DECODE[ALPHABET.charCodeAt(i)] = i;

const btoaFn: ((s: string) => string) | undefined = typeof globalThis.btoa === "function" ? globalThis.btoa : undefined;

// Node's Buffer, found as a global (no import): its native base64 is several
// times faster than btoa over a string built from the bytes.
interface BufferLike {
  from(buf: ArrayBufferLike, byteOffset: number, length: number): { toString(enc: "base64"): string };
}
const NodeBuffer: BufferLike | undefined = (() => {
  const B = (globalThis as { Buffer?: BufferLike & { isBuffer?: unknown } }).Buffer;
  return typeof B?.from === "function" && typeof B.isBuffer === "function" ? B : undefined;
})();

/** Encodes bytes as standard, padded base64 (Node's Buffer or btoa where there is one: about 4x faster). */
export function encodeBase64(bytes: Uint8Array): string {
  if (NodeBuffer !== undefined) return NodeBuffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
  if (btoaFn !== undefined) {
    let bin = "";
    for (let i = 0; i < bytes.length; i += 0x8000) {
      bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000) as unknown as number[]);
    }
    return btoaFn(bin);
  }
  return encodeBase64Portable(bytes);
}

/** The same without btoa. */
export function encodeBase64Portable(bytes: Uint8Array): string {
  const n = bytes.length;
  const parts: string[] = [];
  let out = "";
  let i = 0;
  for (; i + 2 < n; i += 3) {
    const v = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += ALPHABET[v >> 18]! + ALPHABET[(v >> 12) & 63]! + ALPHABET[(v >> 6) & 63]! + ALPHABET[v & 63]!;
    if (out.length >= 8192) {
      parts.push(out);
      out = "";
    }
  }
  if (i < n) {
    const b0 = bytes[i]!;
    const b1 = i + 1 < n ? bytes[i + 1]! : 0;
    const v = (b0 << 16) | (b1 << 8);
    out += ALPHABET[v >> 18]! + ALPHABET[(v >> 12) & 63]! + (i + 1 < n ? ALPHABET[(v >> 6) & 63]! : "=") + "=";
  }
  parts.push(out);
  return parts.length === 1 ? parts[0]! : parts.join("");
}

/** Decodes standard base64 (padding optional); throws on a bad character. */
export function decodeBase64(text: string): Uint8Array {
  let len = text.length;
  while (len > 0 && text.charCodeAt(len - 1) === 61 /* = */) len--;
  if (len % 4 === 1) throw new Error("base64: bad length");
  const out = new Uint8Array(Math.floor((len * 3) / 4));
  let o = 0;
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < len; i++) {
    const c = text.charCodeAt(i);
    const d = c < 128 ? DECODE[c]! : -1;
    if (d < 0) throw new Error(`base64: bad character at ${i}`);
    acc = ((acc << 6) | d) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  return out;
}
