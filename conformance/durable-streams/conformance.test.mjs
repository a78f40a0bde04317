// Runs the official Durable Streams conformance suite against DS_BASE_URL (the server root).
import { runConformanceTests } from "@durable-streams/server-conformance-tests"

runConformanceTests({ baseUrl: process.env.DS_BASE_URL ?? `http://127.0.0.1:4437` })
