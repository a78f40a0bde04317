import { defineConfig } from "vitest/config"

// Only the conformance suite runs under vitest; client.test.mjs runs under node --test.
export default defineConfig({
  test: { include: [`conformance.test.mjs`] },
})
