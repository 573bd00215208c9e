/** e2e/browser.ts: which Chromium the browser tests get, with real executables in a temp dir. */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { after, describe, it } from "node:test";
import { promisify } from "node:util";
import { chromium } from "playwright-core";
import { browserCandidates, findBrowser } from "../e2e/browser.js";
import { ROOT, tempDir } from "./helpers.js";

const MESSAGE =
  "herald e2e: no usable Chromium found (tried HERALD_BROWSER, chromium, chromium-browser, google-chrome, " +
  `Playwright's cache); install one with "npx playwright-core install chromium" or "sudo apt-get install chromium", ` +
  "or set HERALD_BROWSER=/path/to/chrome";

// Checked for presence only: that it starts is what the cases below assert.
const REAL = ["/usr/bin/chromium", chromium.executablePath()].find((file) => fs.existsSync(file));
const NO_REAL = REAL ? false : "no Chromium on this machine (/usr/bin/chromium or Playwright's cache)";

const dir = tempDir("herald-browser-");
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function script(name: string, body: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, `#!/bin/sh\n${body}\n`);
  fs.chmodSync(file, 0o755);
  return file;
}

const BROKEN = script("broken-chrome", "exit 1");

const execFileAsync = promisify(execFile);

function runCli(env: Record<string, string>) {
  return execFileAsync(process.execPath, ["--import", "tsx", path.join(ROOT, "e2e/browser.ts")], {
    cwd: ROOT,
    env: { ...process.env, ...env },
  });
}

describe("browser lookup", () => {
  it("chooses HERALD_BROWSER when it starts, and the CLI prints it", { skip: NO_REAL }, async () => {
    const real = REAL!;
    const candidates = browserCandidates({ HERALD_BROWSER: real, HERALD_BROWSER_SEARCH: "0" });
    assert.deepEqual(candidates, [{ source: "HERALD_BROWSER", path: real }]);
    assert.deepEqual(await findBrowser({ candidates }), {
      found: true,
      source: "HERALD_BROWSER",
      path: real,
      rejected: [],
    });
    const { stdout } = await runCli({ HERALD_BROWSER: real, HERALD_BROWSER_SEARCH: "0", HERALD_BROWSER_FETCH: "0" });
    assert.equal(stdout, `${real}\n`);
  });

  it("lists HERALD_BROWSER first and a browser reached twice once", { skip: NO_REAL }, () => {
    const candidates = browserCandidates({ HERALD_BROWSER: REAL!, PATH: path.dirname(REAL!) });
    assert.deepEqual(candidates[0], { source: "HERALD_BROWSER", path: REAL });
    assert.equal(candidates.filter((c) => fs.realpathSync(c.path) === fs.realpathSync(REAL!)).length, 1);
  });

  it("rejects a HERALD_BROWSER that is present but cannot start", async () => {
    const lookup = await findBrowser({
      candidates: browserCandidates({ HERALD_BROWSER: BROKEN, HERALD_BROWSER_SEARCH: "0" }),
    });
    assert.equal(lookup.found, false);
    assert.equal(lookup.rejected.length, 1);
    assert.equal(lookup.rejected[0]?.path, BROKEN);
    assert.notEqual(lookup.rejected[0]?.reason, "");
  });

  it("goes on past a broken HERALD_BROWSER to the system's browser", { skip: NO_REAL }, async () => {
    const lookup = await findBrowser({ candidates: browserCandidates({ HERALD_BROWSER: BROKEN, PATH: "" }) });
    assert.ok(lookup.found, JSON.stringify(lookup.rejected));
    assert.notEqual(lookup.source, "HERALD_BROWSER");
    assert.equal(lookup.rejected[0]?.source, "HERALD_BROWSER");
    assert.equal(lookup.rejected[0]?.path, BROKEN);
  });

  it("tries candidates in order, skips what is not an executable file, stops at the first that starts", async () => {
    const first = script("first", "exit 1");
    const second = script("second", "exit 0");
    const third = script("third", "exit 0");
    const plain = path.join(dir, "not-executable");
    fs.writeFileSync(plain, "");
    const probed: string[] = [];
    const lookup = await findBrowser({
      candidates: [first, plain, path.join(dir, "absent"), second, third].map((file) => ({
        source: "test",
        path: file,
      })),
      probe: async (file) => {
        probed.push(file);
        if (file === first) throw new Error("crashed\nwith details");
      },
    });
    assert.deepEqual(probed, [first, second]);
    assert.deepEqual(lookup, {
      found: true,
      source: "test",
      path: second,
      rejected: [
        { source: "test", path: first, reason: "crashed" },
        { source: "test", path: plain, reason: "not an executable file" },
        { source: "test", path: path.join(dir, "absent"), reason: "not an executable file" },
      ],
    });
  });

  it("reports missing, with the one line saying what to run, when there is none", async () => {
    assert.deepEqual(await findBrowser({ candidates: [] }), { found: false, message: MESSAGE, rejected: [] });
    assert.deepEqual(
      await findBrowser({
        candidates: browserCandidates({ HERALD_BROWSER: "/nonexistent/chrome", HERALD_BROWSER_SEARCH: "0" }),
      }),
      {
        found: false,
        message: MESSAGE,
        rejected: [{ source: "HERALD_BROWSER", path: "/nonexistent/chrome", reason: "not an executable file" }],
      },
    );
  });

  it("the CLI exits non-zero with exactly that line on stderr, fetching nothing", async () => {
    const run = runCli({
      HERALD_BROWSER: "/nonexistent/chrome",
      HERALD_BROWSER_SEARCH: "0",
      HERALD_BROWSER_FETCH: "0",
    });
    await assert.rejects(run, (err: { code?: unknown; stdout?: string; stderr?: string }) => {
      assert.equal(err.code, 1);
      assert.equal(err.stdout, "");
      assert.equal(err.stderr, `${MESSAGE}\n`);
      return true;
    });
  });
});
