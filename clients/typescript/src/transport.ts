// How a request is sent. In browsers (and whenever the caller passes its own
// `fetch`) that is fetch. Under Node the client's ordinary requests go through
// node:http / node:https with a keep-alive Agent instead: Node 20's fetch
// (undici) costs about 1.8 ms of CPU per POST, node:http a fraction of that.
//
// This module has no static Node import, so the main entry stays loadable in
// browsers: the Node modules are loaded by a dynamic import() of a computed
// specifier, only when running under Node, and bundlers leave it alone.

/** What the client reads of an answer; fetch's Response is one. */
export interface Answerish {
  readonly status: number;
  readonly type?: string;
  readonly headers: { get(name: string): string | null; has(name: string): boolean };
  readonly body?: { cancel(): Promise<void> } | null;
  text(): Promise<string>;
}

/** One request of {@link Sender}. */
export interface SendInit {
  method: string;
  headers: Record<string, string>;
  body?: string;
  signal: AbortSignal;
}

/** Sends one request, never following redirects (the client follows them itself). */
export type Sender = (url: string, init: SendInit) => Promise<Answerish>;

/** Whether this runs under Node (or a runtime that says it is Node-compatible). */
export const isNode =
  typeof (globalThis as { process?: { versions?: { node?: unknown } } }).process?.versions?.node === "string";

// ---- the little of node:http this module uses (the main build has no Node types) ----

interface NodeIncoming {
  statusCode?: number;
  headers: Record<string, string | string[] | undefined>;
  on(ev: "data", f: (chunk: Uint8Array) => void): NodeIncoming;
  on(ev: "end" | "close", f: () => void): NodeIncoming;
  on(ev: "error", f: (e: Error) => void): NodeIncoming;
}

interface NodeRequest {
  on(ev: "response", f: (res: NodeIncoming) => void): NodeRequest;
  on(ev: "error", f: (e: Error) => void): NodeRequest;
  end(body?: string): void;
  destroy(e?: Error): void;
}

interface NodeHttpModule {
  Agent: new (opts: { keepAlive: boolean; scheduling?: "lifo" | "fifo" }) => unknown;
  request(url: string, opts: { method: string; headers: Record<string, string | number>; agent: unknown }, cb?: (res: NodeIncoming) => void): NodeRequest;
}

// Computed, so that bundlers do not try to resolve them for a browser build.
const NODE_HTTP = ["node", "http"].join(":");
const NODE_HTTPS = ["node", "https"].join(":");

let loading: Promise<{ http: NodeHttpModule; https: NodeHttpModule } | null> | undefined;

function loadNodeModules(): Promise<{ http: NodeHttpModule; https: NodeHttpModule } | null> {
  loading ??= Promise.all([
    import(/* webpackIgnore: true */ /* @vite-ignore */ NODE_HTTP) as Promise<NodeHttpModule>,
    import(/* webpackIgnore: true */ /* @vite-ignore */ NODE_HTTPS) as Promise<NodeHttpModule>,
  ]).then(
    ([http, https]) => ({ http, https }),
    () => null, // not really Node: fetch it is
  );
  return loading;
}

/**
 * A node:http sender with keep-alive Agents of its own (one per client), or
 * null when the Node modules cannot be loaded.
 */
export async function nodeSender(): Promise<Sender | null> {
  const m = await loadNodeModules();
  if (m === null) return null;
  const httpAgent = new m.http.Agent({ keepAlive: true, scheduling: "lifo" });
  const httpsAgent = new m.https.Agent({ keepAlive: true, scheduling: "lifo" });
  return (url, init) => send(url.startsWith("https:") ? m.https : m.http, url.startsWith("https:") ? httpsAgent : httpAgent, url, init);
}

// Node's Buffer (a global there; this module runs only under Node).
const NodeBuffer = (globalThis as { Buffer?: { byteLength(s: string, enc: "utf8"): number } }).Buffer;
const encoder = new TextEncoder();

/** The UTF-8 length of a string. */
function byteLength(s: string): number {
  return NodeBuffer !== undefined ? NodeBuffer.byteLength(s, "utf8") : encoder.encode(s).length;
}

const decoder = new TextDecoder(); // strips a BOM and replaces bad UTF-8, as Response.text() does

function send(mod: NodeHttpModule, agent: unknown, url: string, init: SendInit): Promise<Answerish> {
  return new Promise<Answerish>((resolve, reject) => {
    const signal = init.signal;
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    let settled = false;
    let req: NodeRequest;
    const onAbort = () => {
      if (settled) return;
      settled = true;
      req.destroy();
      reject(signal.reason);
    };
    const fail = (e: Error) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener("abort", onAbort);
      req.destroy();
      reject(e);
    };
    const headers: Record<string, string | number> = { ...init.headers };
    // A string body: node:http then sends it in one write with the header
    // block, encoding it straight into the socket's buffer.
    const body = init.body;
    if (body !== undefined) headers["Content-Length"] = byteLength(body);
    try {
      req = mod.request(url, { method: init.method, headers, agent });
    } catch (e) {
      reject(e); // a bad header value, a bad URL
      return;
    }
    signal.addEventListener("abort", onAbort, { once: true });
    req.on("error", fail);
    req.on("response", (res) => {
      const chunks: Uint8Array[] = [];
      let size = 0;
      let ended = false;
      res.on("data", (c) => {
        chunks.push(c);
        size += c.length;
      });
      res.on("error", fail);
      res.on("close", () => {
        if (!ended) fail(Object.assign(new Error("the connection closed before the answer ended"), { code: "ECONNRESET" }));
      });
      res.on("end", () => {
        ended = true;
        if (settled) return;
        settled = true;
        signal.removeEventListener("abort", onAbort);
        let all: Uint8Array;
        if (chunks.length === 1) all = chunks[0]!;
        else {
          all = new Uint8Array(size);
          let o = 0;
          for (const c of chunks) {
            all.set(c, o);
            o += c.length;
          }
        }
        resolve(new NodeAnswer(res.statusCode ?? 0, res.headers, decoder.decode(all)));
      });
    });
    req.end(body);
  });
}

class NodeHeaders {
  constructor(private readonly h: Record<string, string | string[] | undefined>) {}

  get(name: string): string | null {
    const v = this.h[name.toLowerCase()];
    if (v === undefined) return null;
    return Array.isArray(v) ? v.join(", ") : v;
  }

  has(name: string): boolean {
    return this.h[name.toLowerCase()] !== undefined;
  }
}

/** A whole answer, read before it is handed over (the body is never streamed). */
class NodeAnswer implements Answerish {
  readonly headers: NodeHeaders;
  readonly body = null;

  constructor(
    readonly status: number,
    headers: Record<string, string | string[] | undefined>,
    private readonly bodyText: string,
  ) {
    this.headers = new NodeHeaders(headers);
  }

  text(): Promise<string> {
    return Promise.resolve(this.bodyText);
  }
}
