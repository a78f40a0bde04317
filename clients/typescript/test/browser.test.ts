// The built client (dist/) in headless Chromium: a page served from one
// origin appends to and tails a live server on another origin (the server
// runs with --cors-origins for the page's origin, and with tokens).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import type { AddressInfo } from "node:net";
import { chromium, type BrowserContext } from "playwright-core";

import { Client } from "../src/index.js";
import { ServerProc } from "./server.js";

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const distDir = join(pkgDir, "dist");
const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const TOKEN = "browser-test-token-0123456789";

let page: Server;
let pageOrigin = "";
let bb: ServerProc;
let browser: BrowserContext;
let profileDir = "";
let tokensDir = "";

before(async () => {
  assert.ok(existsSync(join(distDir, "index.js")), "build the client first (npm run build)");
  page = createServer((req, res) => {
    const path = new URL(req.url!, "http://x").pathname;
    if (path === "/" || path === "/index.html") {
      res.writeHead(200, { "Content-Type": "text/html" });
      return void res.end("<!doctype html><title>badbatch browser test</title><p>ok</p>");
    }
    const file = normalize(join(pkgDir, path));
    if (path.startsWith("/dist/") && file.startsWith(distDir) && existsSync(file)) {
      res.writeHead(200, { "Content-Type": file.endsWith(".js") ? "text/javascript" : "application/octet-stream" });
      return void res.end(readFileSync(file));
    }
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((r) => page.listen(0, "127.0.0.1", r));
  pageOrigin = `http://127.0.0.1:${(page.address() as AddressInfo).port}`;

  tokensDir = mkdtempSync(join(tmpdir(), "bb-ts-tokens-"));
  writeFileSync(join(tokensDir, "tokens"), `${TOKEN} admin\n`);
  bb = await ServerProc.start(["--tokens-file", join(tokensDir, "tokens"), "--cors-origins", pageOrigin]);

  profileDir = mkdtempSync(join(tmpdir(), "bb-ts-chromium-"));
  browser = await chromium.launchPersistentContext(profileDir, {
    executablePath: chromiumPath,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
});

after(async () => {
  await browser?.close();
  await bb?.close();
  await new Promise<void>((r) => (page ? page.close(() => r()) : r()));
  for (const d of [profileDir, tokensDir]) if (d) rmSync(d, { recursive: true, force: true });
});

test("append and tail in Chromium, from another origin", { timeout: 60_000 }, async () => {
  const p = await browser.newPage();
  const consoleLines: string[] = [];
  p.on("console", (m) => consoleLines.push(m.text()));
  await p.goto(pageOrigin + "/index.html");
  assert.notEqual(new URL(pageOrigin).origin, new URL(bb.url).origin);
  const stream = `browser-${Date.now()}`;

  const out = await p.evaluate(
    async ({ serverUrl, token, stream }) => {
      const m = await import("/dist/index.js" as string);
      const c = new m.Client(serverUrl, { token });
      const a1 = await c.append(stream, { key: "k1", value: { hello: "browser" }, headers: { h: "v" } });
      const a2 = await c.appendBatch(stream, [{ value: new Uint8Array([0, 1, 2, 255]) }, { value: "two" }], { expectedLastOffset: 0 });
      // Tail from earliest: the three records, then a live one.
      const ac = new AbortController();
      const tail = await c.openTail(stream, "earliest", { signal: ac.signal });
      const got: unknown[] = [];
      for await (const r of tail) {
        got.push({ offset: r.offset, key: r.key ?? null, isJson: r.isJson, value: r.isJson ? r.value : Array.from(r.value as Uint8Array), headers: r.headers });
        if (got.length === 3) await c.append(stream, { value: { live: true } });
        if (got.length === 4) break;
      }
      // Errors cross the origin too: a conflict, and a bad token.
      let conflict: unknown = null;
      try {
        await c.append(stream, { value: "x" }, { expectedLastOffset: 0 });
      } catch (e) {
        const err = e as { name: string; kind: string; status: number; currentLastOffset: number };
        conflict = { name: err.name, kind: err.kind, status: err.status, currentLastOffset: err.currentLastOffset };
      }
      let unauthorized: unknown = null;
      try {
        await new m.Client(serverUrl, { token: "not-a-known-token-000000" }).streams();
      } catch (e) {
        const err = e as { kind: string; status: number };
        unauthorized = { kind: err.kind, status: err.status };
      }
      const page = await c.read(stream, 1, { limit: 1 });
      return { a1, a2, got, conflict, unauthorized, nextOffset: page.nextOffset, pageValue: Array.from(page.records[0].value as Uint8Array) };
    },
    { serverUrl: bb.url, token: TOKEN, stream },
  );

  assert.equal(out.a1.firstOffset, 0);
  assert.equal(out.a1.durability, "fsynced");
  assert.deepEqual([out.a2.firstOffset, out.a2.lastOffset, out.a2.count], [1, 2, 2]);
  assert.deepEqual(out.got, [
    { offset: 0, key: "k1", isJson: true, value: { hello: "browser" }, headers: { h: "v" } },
    { offset: 1, key: null, isJson: false, value: [0, 1, 2, 255], headers: {} },
    { offset: 2, key: null, isJson: true, value: "two", headers: {} },
    { offset: 3, key: null, isJson: true, value: { live: true }, headers: {} },
  ]);
  assert.deepEqual(out.conflict, { name: "OffsetMismatchError", kind: "offset_mismatch", status: 409, currentLastOffset: 3 });
  assert.deepEqual(out.unauthorized, { kind: "unauthorized", status: 401 });
  assert.equal(out.nextOffset, 2);
  assert.deepEqual(out.pageValue, [0, 1, 2, 255]);

  // The server holds what the page wrote (checked from Node).
  const node = new Client(bb.url, { token: TOKEN });
  const all = await node.read(stream);
  assert.equal(all.records.length, 4);
  assert.ok(!consoleLines.some((l) => /CORS|blocked/i.test(l)), consoleLines.join("\n"));
  await p.close();
});
