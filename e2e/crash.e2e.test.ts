/**
 * The web chat across a hub crash: the server is SIGKILLed in the middle of a conversation and
 * started again on the same data dir and port; nothing is lost and nothing shows twice.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import { after, before, describe, it } from "node:test";
import type { Browser } from "playwright-core";
import { type SpawnedServer, tempDir } from "../test/helpers.js";
import {
  type ChatUser,
  eventually,
  launchBrowser,
  openChat,
  readMessages,
  send,
  spawnChatServer,
  texts,
  waitOnline,
} from "./fixtures.js";

describe("web chat - server crash", () => {
  const dataDir = tempDir("herald-e2e-crash-");
  let server: SpawnedServer;
  let browser: Browser;
  let alice: ChatUser;
  let bob: ChatUser;

  before(async () => {
    [server, browser] = await Promise.all([spawnChatServer(dataDir), launchBrowser()]);
    [alice, bob] = await Promise.all([
      openChat(browser, server.url, "alice", "/room/crash"),
      openChat(browser, server.url, "bob", "/room/crash"),
    ]);
  });

  after(async () => {
    await alice?.context.close().catch(() => {});
    await bob?.context.close().catch(() => {});
    await browser?.close();
    await server?.stop().catch(() => {});
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it("loses and duplicates nothing when the hub is SIGKILLed mid-conversation", async () => {
    const written: string[] = [];
    for (let i = 1; i <= 3; i++) {
      written.push(`before ${i}`);
      await send(alice.page, `before ${i}`);
    }
    await bob.page.locator("[data-message-id]", { hasText: "before 3" }).waitFor();

    // A burst, and the kill while it is in flight.
    for (let i = 1; i <= 10; i++) {
      written.push(`burst ${i}`);
      await send(alice.page, `burst ${i}`);
    }
    await server.kill();
    await alice.page.locator('[data-state="connecting"], [data-state="offline"]').first().waitFor();
    // Written while the hub is down: queued.
    for (let i = 1; i <= 5; i++) {
      written.push(`while down ${i}`);
      await send(alice.page, `while down ${i}`);
    }
    await bob.page.waitForTimeout(300);

    server = await spawnChatServer(dataDir, server.port);
    await Promise.all([waitOnline(alice.page, 30000), waitOnline(bob.page, 30000)]);
    await bob.page.locator("[data-message-id]", { hasText: "while down 5" }).waitFor({ timeout: 20000 });
    await eventually(
      async () => (await alice.page.locator('[data-status="pending"]').count()) === 0,
      20000,
      "alice's outbox empty",
    );
    await bob.page.locator("[data-message-id]", { hasText: "while down 5" }).waitFor();
    await alice.page.locator('[data-status="delivered"]', { hasText: "while down 5" }).waitFor({ timeout: 20000 });

    const a = await readMessages(alice.page);
    const b = await readMessages(bob.page);
    assert.deepEqual(texts(b), written, "bob sees every message once, in the order written");
    assert.deepEqual(texts(a), written, "so does alice");
    assert.deepEqual(
      b.map((m) => [m.id, m.seq]),
      a.map((m) => [m.id, m.seq]),
    );
    assert.deepEqual(
      b.map((m) => Number(m.seq)),
      written.map((_, i) => i + 1),
      "seqs 1..n, no gaps",
    );
  });
});
