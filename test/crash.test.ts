import assert from "node:assert/strict";
import { it } from "node:test";
import { runChaos } from "./chaos/scenario.js";

it("crash - SIGKILL mid-stream 5 times loses and duplicates nothing that was answered, commits and requests too", {
  timeout: 120_000,
}, async () => {
  const report = await runChaos({ kills: 5, messages: 800, transactions: 90, requests: 200 });
  assert.deepEqual(report.violations, []);
  // 1600 publishes and the 60 of the 90 transactions that commit (every third rolls back).
  assert.equal(report.published, 1660);
  assert.equal(
    Object.values(report.heads).reduce((a, b) => a + b, 0),
    1660,
  );
});
