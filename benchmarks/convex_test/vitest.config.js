import { defineConfig } from "vitest/config";

// convex-test's documented setup (edge-runtime, convex-test inlined), plus
// --expose-gc so the bench can collect garbage before each timed slice.
export default defineConfig({
  test: {
    environment: "edge-runtime",
    server: { deps: { inline: ["convex-test"] } },
    execArgv: ["--expose-gc"],
    testTimeout: 3_600_000,
    hookTimeout: 600_000,
    include: ["bench.test.js"],
  },
});
