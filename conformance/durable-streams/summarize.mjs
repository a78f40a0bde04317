// Summarizes a vitest JSON report: node summarize.mjs report.json
// Prints passed/failed/skipped counts and the failing test names; exits 1 on any failure.
import { readFileSync } from "node:fs"

const report = JSON.parse(readFileSync(process.argv[2], `utf8`))
const failed = []
let passed = 0
let skipped = 0
for (const file of report.testResults ?? []) {
  const results = file.assertionResults ?? []
  for (const t of results) {
    const name = [...(t.ancestorTitles ?? []), t.title].join(` > `)
    if (t.status === `passed`) passed++
    else if (t.status === `failed`) failed.push(name)
    else skipped++
  }
  if (results.length === 0 && file.status === `failed`) {
    failed.push(`${file.name}: ${file.message || `file failed`}`)
  }
}
if (passed + failed.length === 0) failed.push(`no tests ran`)
console.log(`durable streams conformance: ${passed} passed, ${failed.length} failed, ${skipped} skipped`)
for (const name of failed) console.log(`FAILED: ${name}`)
process.exit(failed.length > 0 ? 1 : 0)
