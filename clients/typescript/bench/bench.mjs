// The client benchmark (clients/BENCH.md): node bench/bench.mjs MODE URL STREAM.
// Prints one JSON line on stdout; everything else goes to stderr.
import { Client } from "../dist/index.js";

const [mode, url, stream] = process.argv.slice(2);
if (!mode || !url || !stream) {
  console.error("usage: bench.mjs append|tail URL STREAM");
  process.exit(2);
}
const token = process.env.BADBATCH_TOKEN || undefined;
const client = new Client(url, token ? { token } : {});

async function append() {
  const seconds = Number(process.env.BENCH_SECONDS || 5);
  const batch = [];
  for (let i = 0; i < 100; i++) {
    const v = new Uint8Array(100);
    for (let j = 0; j < 100; j++) v[j] = (i + j) & 255;
    batch.push({ value: v });
  }
  let records = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  const caller = async () => {
    while (performance.now() < end) {
      const r = await client.appendBatch(stream, batch);
      records += r.count;
    }
  };
  await Promise.all([caller(), caller(), caller(), caller()]);
  return { records, seconds: (performance.now() - start) / 1000 };
}

async function tail() {
  const want = Number(process.env.BENCH_RECORDS || 200000);
  let records = 0;
  const start = performance.now();
  for await (const r of client.tail(stream, "earliest")) {
    if (r.value.length !== 100) throw new Error(`record ${r.offset}: ${r.value.length} bytes`);
    if (++records >= want) break;
  }
  return { records, seconds: (performance.now() - start) / 1000 };
}

const res = mode === "append" ? await append() : mode === "tail" ? await tail() : null;
if (!res) {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}
const out = {
  client: "typescript",
  mode,
  records: res.records,
  seconds: Math.round(res.seconds * 100) / 100,
  records_per_sec: Math.round((res.records / res.seconds) * 10) / 10,
};
process.stdout.write(JSON.stringify(out) + "\n");
