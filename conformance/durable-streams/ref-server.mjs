// Starts the reference Durable Streams server (@durable-streams/server) with
// file-backed storage, which fsyncs each append.
//
//   node ref-server.mjs --port 4437 --data-dir /tmp/ds [--long-poll-timeout-ms 30000]
//
// Prints the server URL on stdout once it listens; stops on SIGINT/SIGTERM.
import { parseArgs } from "node:util"
import { mkdirSync } from "node:fs"
import { DurableStreamTestServer } from "@durable-streams/server"

const { values } = parseArgs({
  options: {
    port: { type: `string`, default: `0` },
    host: { type: `string`, default: `127.0.0.1` },
    "data-dir": { type: `string` },
    "long-poll-timeout-ms": { type: `string` },
  },
})
if (!values[`data-dir`]) {
  console.error(`usage: node ref-server.mjs --port N --data-dir DIR [--long-poll-timeout-ms MS]`)
  process.exit(2)
}
mkdirSync(values[`data-dir`], { recursive: true })

const server = new DurableStreamTestServer({
  port: Number(values.port),
  host: values.host,
  dataDir: values[`data-dir`],
  ...(values[`long-poll-timeout-ms`]
    ? { longPollTimeout: Number(values[`long-poll-timeout-ms`]) }
    : {}),
})
const url = await server.start()
console.log(url)

const stop = async () => {
  await server.stop()
  process.exit(0)
}
process.on(`SIGINT`, stop)
process.on(`SIGTERM`, stop)
