/**
 * The queue examples (README "Herald as a queue between services"), each run as a person runs it:
 * `node --import tsx examples/NAME.ts` with HERALD_URL pointing at a real hub, here one of its own
 * with the settings the example asks its reader to start the hub with. The examples check their
 * own claims and exit non-zero when one did not hold; this file also checks the lines that say so.
 * They run side by side, each against its own server, to keep the file's time near the slowest one.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import path from "node:path";
import { describe, it } from "node:test";
import type { Config } from "../server/config.js";
import { ROOT, startServer } from "./helpers.js";

/** Runs an example against a fresh server with `settings`; resolves with what it printed once it exited 0. */
async function runExample(name: string, settings: Partial<Config> = {}, args: string[] = []): Promise<string> {
  const server = await startServer(settings);
  try {
    const child = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, `examples/${name}.ts`), ...args], {
      cwd: ROOT,
      env: { ...process.env, HERALD_URL: server.url },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      out += d.toString();
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 45000);
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    clearTimeout(timer);
    assert.equal(code, 0, `examples/${name}.ts exited with ${code}:\n${out}`);
    assert.doesNotMatch(out, /^FAIL/m, out);
    assert.match(out, /Everything shown held\./, out);
    return out;
  } finally {
    await server.close();
  }
}

describe("examples - Herald as a queue between services", { concurrency: true, timeout: 90000 }, () => {
  it("decoupling: both consumer groups get every order once, shipping across its restart", async () => {
    const out = await runExample("decoupling");
    assert.match(out, /after order 100: shipping stops/);
    assert.match(out, /after order 200: shipping starts again, 100 orders behind/);
    assert.match(out, /shipping caught up on the 100 orders it missed/);
    assert.match(out, /300 of 300 publishes answered/);
    assert.match(out, /billing processed 300 of 300 orders, none twice/);
    assert.match(out, /shipping processed 300 of 300 orders across its restart, none lost, none twice/);
  });

  it("peak-shaving: the burst is held and drained at the workers' pace, BACKLOG_FULL past the limit", async () => {
    const out = await runExample("peak-shaving", { maxBacklog: 500 });
    assert.match(out, /the burst is answered: \d+ accepted, [1-9]\d* refused with BACKLOG_FULL/);
    assert.match(out, /rate in: {2}the 2000 e-mails were offered in/);
    assert.match(out, /rate out: 2000 sent in/);
    assert.match(out, /BACKLOG_FULL: while the workers' group held HERALD_MAX_BACKLOG/);
    assert.match(out, /2000 of 2000 accepted e-mails sent, each exactly once/);
  });

  it("peak-shaving: against a hub whose limit the burst does not reach, it says so and passes", async () => {
    const out = await runExample("peak-shaving");
    assert.match(out, /2000 accepted, 0 refused/);
    assert.match(out, /The hub's backlog limit was not reached/);
    assert.match(out, /HERALD_MAX_BACKLOG=500 npm start/);
  });

  it("transactional-signup: the crash after the local commit is committed, the other rolled back", async () => {
    const out = await runExample("transactional-signup", { txnCheckMs: 300 });
    assert.match(out, /HERALD_TXN_CHECK_MS=500 npm start/);
    assert.match(out, /ada: row saved, then its message committed as seq 1/);
    assert.match(out, /the row of grace is there, answered "commit"/);
    assert.match(out, /no row has it, answered "rollback"/);
    assert.match(out, /the welcome mailer got ada, grace, each once, and nothing for alan/);
  });

  it("backlog-recovery: ten members drain the backlog with every account's order kept", async () => {
    const out = await runExample("backlog-recovery", {}, ["--count", "20000", "--solo", "3000"]);
    assert.match(out, /published 20000 postings in .* with no member connected/);
    assert.match(out, /one member alone drained 3000 in .* a second/);
    assert.match(out, /ten members drained 20000 in .* a second, [\d.]+x one member alone/);
    assert.match(out, /23000 of 23000 postings applied, none twice/);
    assert.match(out, /every account's 230 postings applied in counter order \(0 out of order\)/);
  });

  it("request-reply: results, the responder's own NOT_FOUND, TIMEOUT, then UNAVAILABLE", async () => {
    const out = await runExample("request-reply");
    assert.match(out, /quote 2 x tea-1kg +-> \{"sku":"tea-1kg","qty":2,"total":49\}/);
    assert.match(out, /quote 1 x kettle-red +-> NOT_FOUND: no price for kettle-red/);
    assert.match(out, /quote 1 x samovar, timeoutMs 200 +-> TIMEOUT: /);
    assert.match(out, /the pricing service stops\nquote 1 x tea-1kg +-> UNAVAILABLE: /);
  });

  it("ordered-processing: each order's steps in order, across members working in parallel", async () => {
    const out = await runExample("ordered-processing");
    assert.match(out, /200 of 200 orders had their steps processed in order, each step once/);
    assert.match(out, /orders interleaved across members: \d+ of 200 had steps on more than one member/);
  });
});
