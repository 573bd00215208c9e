import assert from "node:assert/strict";
import { it } from "node:test";
import { runChaos } from "./chaos/scenario.js";

it("crash - SIGKILL mid-stream 5 times loses and duplicates nothing that was answered", {
  timeout: 120_000,
}, async () => {
  const report = await runChaos({ kills: 5, messages: 800 });
  assert.deepEqual(report.violations, []);
  assert.equal(report.published, 1600);
  assert.equal(
    Object.values(report.heads).reduce((a, b) => a + b, 0),
    1600,
  );
});
