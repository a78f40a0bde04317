// A real 3-node cluster: a client pointed at a follower follows its 307 to
// the leader, keeping the bearer token, for appends and cursor writes.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";

import { Client } from "../src/index.js";
import { ServerProc, freePort } from "./server.js";

const TOKEN = "cluster-test-token-0123456789";
let dir = "";
let nodes: ServerProc[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "bb-ts-cluster-"));
  writeFileSync(join(dir, "secret"), randomBytes(32).toString("base64") + "\n");
  writeFileSync(join(dir, "tokens"), `${TOKEN} admin\n`);
  const ports = [await freePort(), await freePort(), await freePort()];
  const peers = ports.map((p, i) => `${i + 1}=127.0.0.1:${p}`).join(",");
  nodes = await Promise.all(
    ports.map((p, i) =>
      ServerProc.start([
        "--node-id", String(i + 1),
        "--cluster-addr", `127.0.0.1:${p}`,
        "--peers", peers,
        "--cluster-secret-file", join(dir, "secret"),
        "--tokens-file", join(dir, "tokens"),
      ]),
    ),
  );
});

after(async () => {
  await Promise.all(nodes.map((n) => n.close()));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function status(url: string): Promise<{ node_id: number; leader_id: number; leader_url?: string }> {
  const r = await fetch(url + "/v1/cluster", { headers: { Authorization: `Bearer ${TOKEN}` } });
  assert.equal(r.status, 200);
  return (await r.json()) as { node_id: number; leader_id: number; leader_url?: string };
}

test("appends and cursor writes sent to a follower reach the leader, token kept", { timeout: 60_000 }, async () => {
  let leaderId = 0;
  for (let i = 0; i < 100 && leaderId === 0; i++) {
    leaderId = (await status(nodes[0]!.url)).leader_id;
    if (leaderId === 0) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(leaderId > 0, "a leader");
  const follower = nodes.find((_, i) => i + 1 !== leaderId)!;
  const st = await status(follower.url);
  assert.notEqual(st.node_id, st.leader_id, "a follower");
  assert.notEqual(new URL(st.leader_url!).origin, new URL(follower.url).origin, "the leader is another origin");

  const c = new Client(follower.url, { token: TOKEN });
  const stream = `cl-${randomBytes(4).toString("hex")}`;
  const r1 = await c.append(stream, { key: "k", value: { n: 1 } });
  const r2 = await c.appendBatch(stream, [{ value: new Uint8Array([1, 2]) }, { value: 3 }], { expectedLastOffset: 0 });
  assert.deepEqual([r1.firstOffset, r2.firstOffset, r2.lastOffset], [0, 1, 2]);
  await c.setCursor(stream, "reader", 2);
  // Reads on the follower are linearizable by default: they see the appends.
  const page = await c.read(stream);
  assert.deepEqual(page.records.map((r) => r.offset), [0, 1, 2]);
  assert.equal(await c.cursor(stream, "reader"), 2);
  // A tail on the follower sees a new append made through it.
  const tail = await c.openTail(stream, "latest");
  await c.append(stream, { value: "live" });
  const next = await tail.next();
  assert.equal(next.value?.offset, 3);
  assert.equal(next.value?.value, "live");
  await tail.close();
});
