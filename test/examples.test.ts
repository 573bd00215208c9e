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

/** Starts an example; `out()` is what it printed so far, `exited` its output at the end. */
function start(...args: string[]) {
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
  const exited = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => child.kill(), 20000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`exited with ${code}:\n${out}`));
    });
  });
  return { child, exited, out: () => out };
}

/** Runs an example to its end and returns what it printed. */
const run = (...args: string[]): Promise<string> => start(...args).exited;

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

it("examples - two workers share the jobs and none is done twice", { timeout: 60000 }, async () => {
  // Numbers of their own, so that they are new members next to the one above.
  const workers = [start("work", "--worker", "7"), start("work", "--worker", "8")];
  const until = Date.now() + 20000;
  while (!workers.every((w) => /working/.test(w.out()))) {
    assert.ok(Date.now() < until, "the workers did not start");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  // The jobs of the test above, all done, are not handed out again; invoices 9..16 are new.
  await run("produce", "16");
  const done = () => workers.flatMap((w) => doneSeqs(w.out()));
  while (done().length < 8) {
    assert.ok(Date.now() < until, `only ${done().length} jobs done`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await new Promise((resolve) => setTimeout(resolve, 300));
  for (const w of workers) w.child.kill("SIGINT");
  const outs = await Promise.all(workers.map((w) => w.exited));
  assert.deepEqual(
    done().sort((a, b) => a - b),
    [9, 10, 11, 12, 13, 14, 15, 16],
  );
  assert.ok(
    outs.every((out) => doneSeqs(out).length > 0),
    "both workers did some",
  );
});
