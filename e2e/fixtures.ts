/**
 * e2e fixtures: the web app built once per process into a temp dir, a real Herald serving it (in
 * this process, or as a child that a test may SIGKILL), real Chromium through playwright-core, and
 * helpers that read the chat the way a user sees it (the rendered message elements).
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import type { Config } from "../server/config.js";
import { ROOT, type SpawnedServer, spawnServer, startServer, type TestServer, tempDir } from "../test/helpers.js";
import { locateBrowser } from "./browser.js";

let webDir: string | undefined;

/** `vite build` into a temp dir (not web/dist, which may be in use), once per process. */
export function buildWeb(): string {
  if (webDir) return webDir;
  const dir = tempDir("herald-e2e-web-");
  process.once("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
  const out = path.join(dir, "dist");
  execFileSync(
    process.execPath,
    [path.join(ROOT, "node_modules/vite/bin/vite.js"), "build", "--outDir", out, "--emptyOutDir"],
    {
      cwd: ROOT,
      stdio: ["ignore", "ignore", "inherit"],
    },
  );
  webDir = out;
  return out;
}

/** A hub on an ephemeral port serving the built chat; fast settings for seeding big rooms. */
export function startChatServer(overrides: Partial<Config> = {}): Promise<TestServer> {
  return startServer({ webDir: buildWeb(), durability: "normal", rateLimit: 1_000_000, ...overrides });
}

export function spawnChatServer(dataDir: string, port = 0): Promise<SpawnedServer> {
  return spawnServer(dataDir, { HERALD_WEB_DIR: buildWeb(), HERALD_RATE_LIMIT: "1000000" }, port);
}

/** The Chromium that `npm test`'s ensure step (./browser.ts) checked, found by the same lookup. */
export async function launchBrowser(): Promise<Browser> {
  const lookup = await locateBrowser();
  if (!lookup.found) throw new Error(lookup.message);
  return chromium.launch({
    executablePath: lookup.path,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

export interface ChatUser {
  user: string;
  context: BrowserContext;
  page: Page;
}

/** A user in a browser context of their own, signed in with `?user=` and opened at `path`. */
export async function openChat(
  browser: Browser,
  baseUrl: string,
  user: string,
  pathname = "/",
  options: { width?: number; height?: number; colorScheme?: "light" | "dark" } = {},
): Promise<ChatUser> {
  const context = await browser.newContext({
    viewport: { width: options.width ?? 1100, height: options.height ?? 760 },
    colorScheme: options.colorScheme ?? "light",
  });
  const page = await context.newPage();
  page.on("pageerror", (err) => console.error(`[${user}] page error:`, err));
  await page.goto(`${baseUrl}${pathname}?user=${encodeURIComponent(user)}`);
  await waitOnline(page);
  return { user, context, page };
}

export async function waitOnline(page: Page, timeout = 15000): Promise<void> {
  await page.locator('[data-state="online"]').first().waitFor({ timeout });
}

/**
 * Cuts the user's network, and waits until the app shows it and its socket is really gone (the
 * browser says "offline" at once; the socket closes a moment later).
 */
export async function goOffline(u: ChatUser): Promise<void> {
  await u.context.setOffline(true);
  await u.page.locator('[data-state="offline"]:not([data-socket="connected"])').first().waitFor({ timeout: 15000 });
}

/** Types into the composer (named "Message") and presses Enter. */
export async function send(page: Page, text: string): Promise<void> {
  const box = page.getByRole("textbox", { name: "Message", exact: true });
  await box.fill(text);
  await box.press("Enter");
}

export interface SeenMessage {
  id: string;
  seq: string;
  from: string;
  status: string;
  text: string;
}

/**
 * Every message of the open conversation as rendered, top to bottom: the list is virtualized, so
 * it scrolls through it from the top and reads what is in the DOM at each step. Throws if one step
 * shows a message element twice.
 */
export async function readMessages(page: Page): Promise<SeenMessage[]> {
  // A string, so that the test runner's transpiler adds no helpers the page lacks.
  return page.evaluate(READ_MESSAGES) as Promise<SeenMessage[]>;
}

const READ_MESSAGES = `(async () => {
  const list = document.querySelector('[role="log"]');
  if (!list) throw new Error("no message list");
  const frame = () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  const seen = new Map();
  list.scrollTop = 0;
  await frame();
  for (let guard = 0; guard < 10000; guard++) {
    const onScreen = new Set();
    for (const el of list.querySelectorAll("[data-message-id]")) {
      const key = el.dataset.from + "\\u0000" + el.dataset.messageId;
      if (onScreen.has(key)) throw new Error("message " + el.dataset.messageId + " rendered twice");
      onScreen.add(key);
      const top = el.getBoundingClientRect().top + list.scrollTop;
      seen.set(key, {
        top,
        m: {
          id: el.dataset.messageId || "",
          seq: el.dataset.seq || "",
          from: el.dataset.from || "",
          status: el.dataset.status || "",
          text: el.querySelector(".text")?.textContent || "",
        },
      });
    }
    if (list.scrollTop + list.clientHeight >= list.scrollHeight - 1) break;
    list.scrollTop += Math.max(100, list.clientHeight * 0.8);
    await frame();
  }
  list.scrollTop = list.scrollHeight;
  await frame();
  return [...seen.values()].sort((a, b) => a.top - b.top).map((v) => v.m);
})()`;

/** Polls `fn` until it returns true (or throws the last failure after `timeout`). */
export async function eventually(
  fn: () => Promise<boolean> | boolean,
  timeout = 15000,
  what = "condition",
): Promise<void> {
  const deadline = Date.now() + timeout;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export const texts = (messages: SeenMessage[]) => messages.map((m) => m.text);
