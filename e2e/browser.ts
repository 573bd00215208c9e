/**
 * The Chromium the browser tests drive. `npm test`'s ensure step and the e2e fixtures find it with
 * the same lookup, so the browser the ensure step checked is the one the tests launch. Candidates,
 * in order:
 *   1. HERALD_BROWSER, a path to an executable;
 *   2. the system's chromium, chromium-browser, google-chrome (each directory of PATH, then /usr/bin);
 *   3. Playwright's own cache (playwright-core's chromium.executablePath(), when that file exists).
 * A candidate counts only once it has really launched headless and closed, within 20 s: one that is
 * present but cannot start (missing libraries, a stub, another architecture) is passed over.
 *
 * `node --import tsx e2e/browser.ts` ensures one. When no candidate starts, it fetches one, first
 * with Playwright's installer (needs the internet), then, when run as root where apt-get exists,
 * Debian's chromium package, and looks again. It prints the chosen path on stdout, or, with none,
 * exits 1 after one line on stderr saying what to run.
 *
 * Settings, from the environment:
 *   HERALD_BROWSER=/path/to/chrome  tried first
 *   HERALD_BROWSER_SEARCH=0         try HERALD_BROWSER only: not the system's browsers nor Playwright's cache
 *   HERALD_BROWSER_FETCH=0          never download or install one
 */
import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { chromium } from "playwright-core";

const SYSTEM_BROWSERS = ["chromium", "chromium-browser", "google-chrome"];
const PLAYWRIGHT_CACHE = "Playwright's cache";
const PROBE_ARGS = ["--headless", "--no-sandbox", "--disable-gpu"];
const PROBE_TIMEOUT_MS = 20_000;
const PLAYWRIGHT_CLI = path.resolve(import.meta.dirname, "../node_modules/playwright-core/cli.js");

export const MISSING_MESSAGE =
  `herald e2e: no usable Chromium found (tried HERALD_BROWSER, ${SYSTEM_BROWSERS.join(", ")}, ${PLAYWRIGHT_CACHE}); ` +
  `install one with "npx playwright-core install chromium" or "sudo apt-get install chromium", ` +
  "or set HERALD_BROWSER=/path/to/chrome";

type Env = Readonly<Record<string, string | undefined>>;

export interface Candidate {
  /** Where it came from: "HERALD_BROWSER", a system browser's name, or "Playwright's cache". */
  source: string;
  path: string;
}

export interface Rejected extends Candidate {
  reason: string;
}

export type Lookup =
  | { found: true; source: string; path: string; rejected: Rejected[] }
  | { found: false; message: string; rejected: Rejected[] };

/** Resolves once the browser at `executablePath` has started and closed; rejects if it cannot. */
export type Probe = (executablePath: string) => Promise<void>;

export async function startsHeadless(executablePath: string): Promise<void> {
  const browser = await chromium.launch({ executablePath, args: PROBE_ARGS, timeout: PROBE_TIMEOUT_MS });
  await browser.close();
}

/** The candidates `env` gives, in the order above; a file reached by two routes is listed once. */
export function browserCandidates(env: Env = process.env): Candidate[] {
  const candidates: Candidate[] = [];
  const seen = new Set<string>();
  const add = (source: string, file: string) => {
    const key = realPath(file);
    if (seen.has(key)) return;
    seen.add(key);
    candidates.push({ source, path: file });
  };
  if (env.HERALD_BROWSER) add("HERALD_BROWSER", env.HERALD_BROWSER);
  if (env.HERALD_BROWSER_SEARCH === "0") return candidates;
  for (const name of SYSTEM_BROWSERS) {
    for (const file of lookPath(name, env)) add(name, file);
  }
  const own = chromium.executablePath();
  if (fs.existsSync(own)) add(PLAYWRIGHT_CACHE, own);
  return candidates;
}

/** The first candidate that is an executable file and passes `probe`. */
export async function findBrowser(options: { candidates: readonly Candidate[]; probe?: Probe }): Promise<Lookup> {
  const probe = options.probe ?? startsHeadless;
  const rejected: Rejected[] = [];
  for (const candidate of options.candidates) {
    if (!isExecutable(candidate.path)) {
      rejected.push({ ...candidate, reason: "not an executable file" });
      continue;
    }
    try {
      await probe(candidate.path);
      return { found: true, ...candidate, rejected };
    } catch (err) {
      rejected.push({ ...candidate, reason: firstLine(err) });
    }
  }
  return { found: false, message: MISSING_MESSAGE, rejected };
}

let located: Promise<Lookup> | undefined;

/** The lookup over this process's environment, without fetching, once per process. */
export function locateBrowser(): Promise<Lookup> {
  located ??= findBrowser({ candidates: browserCandidates() });
  return located;
}

/** The lookup, and when it finds none, each way of fetching one that can apply here, then again. */
export async function ensureBrowser(env: Env = process.env): Promise<Lookup> {
  const look = () => findBrowser({ candidates: browserCandidates(env) });
  let lookup = await look();
  if (lookup.found || env.HERALD_BROWSER_FETCH === "0") return lookup;
  for (const attempt of fetches(env)) {
    console.error(
      `herald e2e: no usable Chromium yet; trying "${attempt.label}" (up to ${attempt.timeoutMs / 60_000} min)`,
    );
    const failure = await runAll(attempt.steps, attempt.timeoutMs);
    if (failure) {
      console.error(`herald e2e: "${attempt.label}" failed: ${failure}`);
      continue;
    }
    lookup = await look();
    if (lookup.found) return lookup;
  }
  return lookup;
}

interface Fetch {
  label: string;
  steps: [file: string, args: string[]][];
  timeoutMs: number;
}

function fetches(env: Env): Fetch[] {
  const list: Fetch[] = [
    {
      label: "npx playwright-core install chromium",
      steps: [[process.execPath, [PLAYWRIGHT_CLI, "install", "chromium"]]],
      timeoutMs: 2 * 60_000,
    },
  ];
  const aptGet = lookPath("apt-get", env)[0];
  if (aptGet && process.getuid?.() === 0) {
    list.push({
      label: "apt-get install chromium",
      steps: [
        [aptGet, ["update", "-qq"]],
        [aptGet, ["install", "-y", "-qq", "chromium"]],
      ],
      timeoutMs: 10 * 60_000,
    });
  }
  return list;
}

const execFileAsync = promisify(execFile);

/** Runs the steps in turn within `timeoutMs` in all; the first failure's reason, or undefined. */
async function runAll(steps: Fetch["steps"], timeoutMs: number): Promise<string | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (const [file, args] of steps) {
    try {
      await execFileAsync(file, args, {
        timeout: Math.max(1, deadline - Date.now()),
        // Captured rather than shown: offline, Playwright's installer prints a stack trace per retry.
        maxBuffer: 64 * 1024 * 1024,
        env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
      });
    } catch (err) {
      const { killed, stderr } = err as { killed?: boolean; stderr?: string };
      if (killed) return `timed out after ${Math.round(timeoutMs / 1000)} s`;
      return stderr?.split("\n").find((line) => line.trim() !== "") ?? firstLine(err);
    }
  }
  return undefined;
}

function lookPath(name: string, env: Env): string[] {
  const dirs = [...(env.PATH ?? "").split(path.delimiter).filter((dir) => dir !== ""), "/usr/bin"];
  return dirs.map((dir) => path.join(dir, name)).filter(isExecutable);
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function realPath(file: string): string {
  try {
    return fs.realpathSync(file);
  } catch {
    return file;
  }
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split("\n")[0] ?? "";
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const lookup = await ensureBrowser();
  if (lookup.found) {
    console.log(lookup.path);
  } else {
    console.error(lookup.message);
    process.exitCode = 1;
  }
}
