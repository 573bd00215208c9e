import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import path from "node:path";
import { after, before, it } from "node:test";
import { ROOT, startServer, type TestServer } from "./helpers.js";

let server: TestServer;
before(async () => {
  server = await startServer();
});
after(() => server.close());

/** Runs an example to its end and returns what it printed. */
function run(...args: string[]): Promise<string> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", path.join(ROOT, "examples/jobs.ts"), ...args, "--url", server.url],
    {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  let out = "";
  child.stdout.on("data", (d: Buffer) => {
    out += d.toString();
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => child.kill(), 20000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`exited with ${code}:\n${out}`));
    });
  });
}

const doneSeqs = (out: string) => [...out.matchAll(/^done: seq (\d+)/gm)].map((m) => Number(m[1]));

it("examples - the job worker resumes after the last job it finished and does none twice", {
  timeout: 60000,
}, async () => {
  // First run creates the durable subscription; nothing is queued yet.
  const idle = run("work", "--stop-after", "1");
  await new Promise((resolve) => setTimeout(resolve, 1500));
  assert.match(await run("produce", "6"), /enqueued invoice 6 as seq 6/);
  assert.deepEqual(doneSeqs(await idle), [1]);
  assert.deepEqual(doneSeqs(await run("work", "--stop-after", "3")), [2, 3, 4]);
  assert.match(await run("produce", "8"), /enqueued invoice 1 as seq 1 \(it was already there\)/);
  assert.deepEqual(doneSeqs(await run("work", "--stop-after", "4")), [5, 6, 7, 8]);
});
