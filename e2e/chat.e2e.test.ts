/**
 * The web chat's user stories (issue 4) in real Chromium against a real hub: two users chat, one
 * goes offline and catches up, messages written offline go out once, a reload shows the same list,
 * a DM reaches only its recipient, presence and typing show, history loads on scroll-up.
 */
import assert from "node:assert/strict";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { SignJWT } from "jose";
import type { Browser } from "playwright-core";
import { io } from "socket.io-client";
import { ROOT, type TestServer } from "../test/helpers.js";
import {
  type ChatUser,
  eventually,
  goOffline,
  launchBrowser,
  openChat,
  readMessages,
  send,
  startChatServer,
  texts,
  waitOnline,
} from "./fixtures.js";

let server: TestServer;
let browser: Browser;
const users: ChatUser[] = [];

async function open(user: string, pathname: string, options?: Parameters<typeof openChat>[4]): Promise<ChatUser> {
  const u = await openChat(browser, server.url, user, pathname, options);
  users.push(u);
  return u;
}

before(async () => {
  [server, browser] = await Promise.all([startChatServer(), launchBrowser()]);
});

after(async () => {
  for (const u of users) await u.context.close().catch(() => {});
  await browser?.close();
  await server?.close();
});

const messageEl = (u: ChatUser, text: string) => u.page.locator("[data-message-id]", { hasText: text });

describe("web chat - two users in a room", () => {
  let alice: ChatUser;
  let bob: ChatUser;
  before(async () => {
    [alice, bob] = await Promise.all([open("alice", "/room/lobby"), open("bob", "/room/lobby")]);
  });

  it("sends, shows pending then sent, and delivers to the other", async () => {
    await send(alice.page, "hello bob");
    const mine = messageEl(alice, "hello bob");
    await mine.waitFor();
    await eventually(async () => (await mine.getAttribute("data-seq")) !== "", 10000, "a seq on alice's message");
    await messageEl(bob, "hello bob").waitFor();
    await send(bob.page, "hi alice");
    await messageEl(alice, "hi alice").waitFor();
    const a = await readMessages(alice.page);
    const b = await readMessages(bob.page);
    assert.deepEqual(texts(a), ["hello bob", "hi alice"]);
    assert.deepEqual(
      b.map((m) => [m.id, m.seq]),
      a.map((m) => [m.id, m.seq]),
    );
  });

  it("Shift+Enter breaks the line and Enter sends", async () => {
    const box = alice.page.getByRole("textbox", { name: "Message", exact: true });
    await box.fill("line one");
    await box.press("Shift+Enter");
    await box.pressSequentially("line two");
    await box.press("Enter");
    await messageEl(bob, "line two").waitFor();
    assert.equal(await messageEl(bob, "line two").locator(".text").textContent(), "line one\nline two");
    assert.equal(await box.inputValue(), "");
  });

  it("shows who is online in the room and who is typing", async () => {
    const members = alice.page.getByRole("complementary", { name: "People online" });
    await members.getByText("bob", { exact: true }).waitFor();
    await bob.page.getByRole("textbox", { name: "Message", exact: true }).pressSequentially("typing something");
    await alice.page.getByText("bob is typing…").waitFor({ timeout: 5000 });
    await bob.page.getByRole("textbox", { name: "Message", exact: true }).press("Enter");
    await messageEl(alice, "typing something").waitFor();
    await alice.page.getByText("bob is typing…").waitFor({ state: "detached", timeout: 7000 });
  });

  it("catches up after being offline: exactly the 50 messages sent meanwhile, in order", async () => {
    const before = await readMessages(bob.page);
    await goOffline(bob);
    const sent: string[] = [];
    for (let i = 1; i <= 50; i++) {
      sent.push(`catch-up ${i}`);
      await send(alice.page, `catch-up ${i}`);
    }
    await eventually(
      async () => (await alice.page.locator('[data-status="delivered"]', { hasText: "catch-up 50" }).count()) === 1,
      15000,
      "alice's 50 messages delivered",
    );
    assert.equal(await messageEl(bob, "catch-up").count(), 0, "nothing arrives while offline");
    await bob.context.setOffline(false);
    await waitOnline(bob.page);
    await messageEl(bob, "catch-up 50").waitFor();
    const after = await readMessages(bob.page);
    assert.deepEqual(texts(after), [...texts(before), ...sent]);
    const seqs = after.map((m) => Number(m.seq));
    assert.deepEqual(
      seqs,
      [...seqs].sort((x, y) => x - y),
      "in seq order",
    );
    assert.equal(new Set(seqs).size, seqs.length, "no duplicates");
  });

  it("queues messages written offline, keeps them across a reload, and sends each once", async () => {
    await goOffline(bob);
    for (const t of ["offline one", "offline two", "offline three"]) await send(bob.page, t);
    await eventually(
      async () => (await bob.page.locator('[data-status="pending"]').count()) === 3,
      5000,
      "3 pending messages",
    );
    // Reload with the page reachable but the hub not (socket.io's polling handshake refused).
    await bob.page.route("**/socket.io/**", (route) => route.abort());
    await bob.context.setOffline(false);
    await bob.page.reload();
    await bob.page.getByRole("textbox", { name: "Message", exact: true }).waitFor();
    await eventually(
      async () => (await bob.page.locator('[data-status="pending"]').count()) === 3,
      5000,
      "the 3 pending messages after the reload",
    );
    await bob.page.unroute("**/socket.io/**");
    await waitOnline(bob.page, 20000);
    await messageEl(alice, "offline three").waitFor();
    await eventually(
      async () =>
        (await bob.page.locator('[data-status="delivered"]', { hasText: /offline (one|two|three)/ }).count()) === 3,
      10000,
      "bob's 3 messages delivered back to him",
    );
    const a = await readMessages(alice.page);
    const b = await readMessages(bob.page);
    assert.deepEqual(texts(a).slice(-3), ["offline one", "offline two", "offline three"]);
    assert.equal(texts(a).filter((t) => t.startsWith("offline")).length, 3, "each once");
    assert.deepEqual(
      b.map((m) => [m.id, m.seq]),
      a.map((m) => [m.id, m.seq]),
    );
  });

  it("shows the same list after a reload", async () => {
    const beforeReload = await readMessages(alice.page);
    await alice.page.reload();
    await waitOnline(alice.page);
    await messageEl(alice, "offline three").waitFor();
    const afterReload = await readMessages(alice.page);
    assert.deepEqual(
      afterReload.map((m) => [m.id, m.seq, m.text]),
      beforeReload.map((m) => [m.id, m.seq, m.text]),
    );
  });
});

describe("web chat - direct messages", () => {
  it("reaches only its recipient, who sees it in the conversation with the sender", async () => {
    const [dana, erin, frank] = await Promise.all([
      open("dana", "/dm/erin"),
      open("erin", "/room/elsewhere"),
      open("frank", "/room/elsewhere"),
    ]);
    await send(dana.page, "just between us");
    const mine = messageEl(dana, "just between us");
    await mine.waitFor();
    await eventually(async () => (await mine.getAttribute("data-status")) === "sent", 10000, "dana's DM sent");
    const id = await mine.getAttribute("data-message-id");
    // Erin gets an unread conversation with dana, and the message in it.
    const link = erin.page.getByRole("link", { name: /Direct messages with dana, 1 unread/ });
    await link.waitFor();
    await link.click();
    await erin.page.locator(`[data-message-id="${id}"]`).waitFor();
    await send(erin.page, "sure");
    await messageEl(dana, "sure").waitFor();
    assert.deepEqual(texts(await readMessages(dana.page)), ["just between us", "sure"]);
    // Frank sees nothing of it: no conversation with dana, and no such element anywhere.
    await frank.page.waitForTimeout(300);
    assert.equal(await frank.page.getByRole("link", { name: /dana/ }).count(), 0);
    assert.equal(await frank.page.locator(`[data-message-id="${id}"]`).count(), 0);
  });
});

describe("web chat - history", () => {
  it("loads older messages on scroll-up in a room of 10k messages, rendering only a window", async () => {
    const seeder = io(server.url, { auth: { clientId: "seeder", user: "history-bot" }, transports: ["websocket"] });
    await new Promise<void>((resolve, reject) => {
      seeder.once("connect", resolve);
      seeder.once("connect_error", reject);
    });
    const N = 10000;
    for (let start = 1; start <= N; start += 1000) {
      await Promise.all(
        Array.from({ length: 1000 }, (_, k) =>
          seeder.emitWithAck("publish", {
            id: `h${start + k}`,
            topic: "room:archive",
            payload: { text: `archived message ${start + k}` },
          }),
        ),
      );
    }
    seeder.close();
    const reader = await open("reader", "/room/archive");
    await reader.page.locator('[data-seq="10000"]').waitFor();
    const list = reader.page.getByRole("log");
    const lowest = async () =>
      Math.min(
        ...(await reader.page
          .locator("[data-seq]")
          .evaluateAll((els) => els.map((e) => Number(e.getAttribute("data-seq"))))),
      );
    assert.ok((await lowest()) > 9000, "starts with the newest page");
    // The first scroll to the top: older messages come in above, and what was at the top stays
    // where it was on screen (no jump).
    const top = await lowest();
    await list.evaluate((el) => {
      el.scrollTop = 0;
    });
    await eventually(async () => (await lowest()) < top, 10000, "an older page");
    await reader.page.waitForTimeout(200);
    const [listBox, anchorBox] = await Promise.all([
      list.boundingBox(),
      reader.page.locator(`[data-seq="${top}"]`).boundingBox(),
    ]);
    assert.ok(listBox && anchorBox, "the message that was at the top is still rendered");
    assert.ok(
      anchorBox.y >= listBox.y - 5 && anchorBox.y < listBox.y + listBox.height / 2,
      `the message that was at the top is still near the top (${anchorBox.y} in ${listBox.y}..${listBox.y + listBox.height})`,
    );
    const started = Date.now();
    while ((await lowest()) > 9500 && Date.now() - started < 20000) {
      await list.evaluate((el) => {
        el.scrollTop = 0;
      });
      await reader.page.waitForTimeout(100);
    }
    assert.ok((await lowest()) <= 9500, `scrolling up loaded older history (lowest ${await lowest()})`);
    const rendered = await reader.page.locator("[data-message-id]").count();
    assert.ok(rendered < 150, `only a window is rendered (${rendered} elements)`);
    // Consecutive seqs in the DOM: no hole and no duplicate where pages meet.
    const seqs = await reader.page
      .locator("[data-seq]")
      .evaluateAll((els) => els.map((e) => Number(e.getAttribute("data-seq"))));
    for (let i = 1; i < seqs.length; i++) assert.equal(seqs[i], seqs[i - 1]! + 1);
    // Scrolled up, a button brings the newest back.
    await reader.page.getByRole("button", { name: /Jump to latest/ }).click();
    await reader.page.locator('[data-seq="10000"]').waitFor();
    await reader.page.getByRole("button", { name: /Jump to latest/ }).waitFor({ state: "detached" });
  });
});

describe("web chat - screenshot", () => {
  it("takes the README's screenshot (docs/screenshot.png with HERALD_UPDATE_SCREENSHOT=1)", async () => {
    const [maya, omar, lin] = await Promise.all([
      open("maya", "/room/general", { width: 1280, height: 800 }),
      open("omar", "/room/design"),
      open("lin", "/room/design"),
    ]);
    for (const room of ["random", "design"]) {
      await maya.page.getByRole("textbox", { name: "Join or create a room" }).fill(room);
      await maya.page.getByRole("button", { name: "Join" }).click();
      await maya.page.getByRole("heading", { name: `# ${room}` }).waitFor();
    }
    const script: [ChatUser, string][] = [
      [lin, "Pushed the new illustrations to the shared folder."],
      [lin, "The empty states use them now as well."],
      [omar, "They look lovely, thank you!"],
      [maya, "Morning! The new onboarding flow is up on staging."],
      [omar, "Nice. I'll click through it after standup."],
      [omar, "Did the copy changes from Friday make it in?"],
      [maya, "They did, plus the shorter sign-up form we talked about."],
      [lin, "Looks great on my phone too. One nit: the progress dots are a bit low-contrast in dark mode."],
      [maya, "Good catch, I'll bump them to the accent colour."],
      [omar, "Shipping it Thursday then?\nI can write the release notes."],
    ];
    for (const [u, t] of script) {
      await send(u.page, t);
      await messageEl(maya, t.split("\n")[0]!).waitFor();
    }
    // Elsewhere, things happen: unread counts in the sidebar.
    const post = (user: string, topic: string, text: string) =>
      fetch(`${server.url}/api/v1/publish`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-herald-user": user },
        body: JSON.stringify({ id: `shot-${user}-${text.length}-${Date.now()}`, topic, payload: { text } }),
      });
    await post("omar", "room:general", "Lunch at 12:30?");
    await post("lin", "room:general", "In!");
    await post("omar", "room:general", "Booked a table for four.");
    await post("lin", "user:maya", "Can you look at my PR when you have a minute?");
    await post("ops", "broadcast", "Maintenance window Saturday 02:00-03:00 UTC.");
    await maya.page.getByRole("link", { name: /Room general, 3 unread/ }).waitFor();
    await maya.page.getByRole("link", { name: /Direct messages with lin, 1 unread/ }).waitFor();
    await maya.page.getByRole("textbox", { name: "Message", exact: true }).fill("Thursday works for me");
    await lin.page.getByRole("textbox", { name: "Message", exact: true }).pressSequentially("Sounds");
    await maya.page.getByText("lin is typing…").waitFor();
    await maya.page.mouse.move(1200, 700);
    // The README's picture is refreshed on request only, so that a test run leaves the tree clean.
    const file = process.env.HERALD_UPDATE_SCREENSHOT
      ? path.join(ROOT, "docs/screenshot.png")
      : path.join(os.tmpdir(), "herald-screenshot.png");
    await maya.page.screenshot({ path: file });
  });
});

describe("web chat - phone and tabs", () => {
  it("is usable on a phone-width screen: chat, back to the list, another room", async () => {
    const [phone, desk] = await Promise.all([
      open("pat", "/room/mobile", { width: 390, height: 780 }),
      open("quinn", "/room/mobile"),
    ]);
    await send(phone.page, "from my phone");
    await messageEl(desk, "from my phone").waitFor();
    await send(desk.page, "hello phone");
    await messageEl(phone, "hello phone").waitFor();
    const box = await phone.page.getByRole("textbox", { name: "Message", exact: true }).boundingBox();
    assert.ok(box && box.x >= 0 && box.x + box.width <= 390, "the composer fits the screen");
    await phone.page.getByRole("button", { name: "Back to conversations" }).click();
    await phone.page.getByRole("textbox", { name: "Join or create a room" }).fill("second");
    await phone.page.getByRole("button", { name: "Join" }).click();
    await phone.page.waitForURL(/\/room\/second$/);
    await phone.page.getByRole("heading", { name: "# second" }).waitFor();
    await send(phone.page, "in the second room");
    await messageEl(phone, "in the second room").waitFor();
  });

  it("a duplicated tab takes a fresh clientId, so neither tab replaces the other", async () => {
    const first = await open("rita", "/room/tabs");
    const clientId = await first.page.evaluate(() => sessionStorage.getItem("herald:clientId"));
    assert.ok(clientId);
    // What duplicating a tab does: a new tab with a copy of sessionStorage.
    const second = await first.context.newPage();
    await second.addInitScript((id) => {
      if (!sessionStorage.getItem("herald:clientId")) sessionStorage.setItem("herald:clientId", id);
    }, clientId);
    await second.goto(`${server.url}/room/tabs`);
    await waitOnline(second);
    const secondId = await second.evaluate(() => sessionStorage.getItem("herald:clientId"));
    assert.notEqual(secondId, clientId);
    const other = await open("sam", "/room/tabs");
    await send(other.page, "both tabs see this");
    await first.page.locator("[data-message-id]", { hasText: "both tabs see this" }).waitFor();
    await second.locator("[data-message-id]", { hasText: "both tabs see this" }).waitFor();
    assert.equal(await first.page.locator('[data-state="online"]').count(), 1);
  });
});

describe("web chat - rooms", () => {
  it("leaving a room drops it from the list and the room's presence, also after a reload", async () => {
    const [tom, uma] = await Promise.all([open("tom", "/room/stay"), open("uma", "/room/brief")]);
    await tom.page.getByRole("textbox", { name: "Join or create a room" }).fill("brief");
    await tom.page.getByRole("textbox", { name: "Join or create a room" }).press("Enter");
    await tom.page.waitForURL(/\/room\/brief$/);
    const members = uma.page.getByRole("complementary", { name: "People online" });
    await members.getByText("tom", { exact: true }).waitFor();
    await tom.page.getByRole("button", { name: "Leave room brief" }).click();
    await tom.page.getByRole("link", { name: "Room brief" }).waitFor({ state: "detached" });
    await members.getByText("tom", { exact: true }).waitFor({ state: "detached" });
    await send(uma.page, "after tom left");
    await tom.page.reload();
    await waitOnline(tom.page);
    await tom.page.getByRole("link", { name: "Room stay" }).waitFor();
    assert.equal(await tom.page.getByRole("link", { name: /Room brief/ }).count(), 0);
  });
});

describe("web chat - jwt sign-in", () => {
  it("signs in with ?token= and refuses a bad one with a way back to sign-in", async () => {
    const secret = "e2e-secret-e2e-secret-e2e-secret";
    const jwt = await startChatServer({ auth: "jwt", jwtSecret: secret });
    try {
      const token = await new SignJWT({})
        .setProtectedHeader({ alg: "HS256" })
        .setSubject("vera")
        .sign(new TextEncoder().encode(secret));
      const context = await browser.newContext();
      users.push({ user: "vera", context, page: await context.newPage() });
      const page = context.pages()[0]!;
      page.on("pageerror", (err) => console.error("[vera] page error:", err));
      await page.goto(`${jwt.url}/room/secure?token=${token}`);
      await waitOnline(page);
      assert.equal(new URL(page.url()).search, "", "the token leaves the address bar");
      await send(page, "signed in with a token");
      await page.locator('[data-status="delivered"]', { hasText: "signed in with a token" }).waitFor();
      assert.equal(await page.locator('[data-from="vera"]').count(), 1);
      await page.goto(`${jwt.url}/room/secure?token=not.a.token`);
      await page
        .getByRole("alert")
        .getByText(/Sign-in was refused/)
        .waitFor();
      await page.getByRole("button", { name: "Sign in again" }).click();
      await page.getByRole("button", { name: "Sign in" }).waitFor();
    } finally {
      await jwt.close();
    }
  });
});

describe("web chat - retention gap", () => {
  it("shows a notice where retention removed messages before they arrived", async () => {
    const small = await startChatServer({ retentionMessages: 5 });
    try {
      const gina = await openChat(browser, small.url, "gina", "/room/gap");
      users.push(gina);
      await goOffline(gina);
      const seeder = io(small.url, { auth: { clientId: "gap-seeder", user: "hank" }, transports: ["websocket"] });
      for (let i = 1; i <= 20; i++) {
        await seeder.emitWithAck("publish", { id: `g${i}`, topic: "room:gap", payload: { text: `kept? ${i}` } });
      }
      seeder.close();
      await small.herald.retention.sweep();
      await gina.context.setOffline(false);
      await waitOnline(gina.page);
      await messageEl(gina, "kept? 20").waitFor();
      const notice = gina.page.getByRole("note");
      await notice.waitFor();
      assert.match((await notice.textContent()) ?? "", /15 messages were removed by retention/);
      assert.deepEqual(texts(await readMessages(gina.page)), [
        "kept? 16",
        "kept? 17",
        "kept? 18",
        "kept? 19",
        "kept? 20",
      ]);
    } finally {
      await small.close();
    }
  });
});

describe("web chat - links", () => {
  it("renders http(s) URLs in a message as links opening a new tab, and javascript: as text", async () => {
    const [wes, xia] = await Promise.all([open("wes", "/room/links"), open("xia", "/room/links")]);
    const text = "see https://example.com/a?b=1 and javascript:alert(1)";
    await send(wes.page, text);
    // The sender's own message and the one delivered to the other render alike.
    for (const u of [wes, xia]) {
      const el = messageEl(u, text);
      await el.waitFor();
      assert.equal(await el.locator(".text").textContent(), text);
      const anchors = await el
        .locator("a")
        .evaluateAll((as) =>
          as.map((a) => [a.getAttribute("href"), a.getAttribute("target"), a.getAttribute("rel"), a.textContent]),
        );
      assert.deepEqual(anchors, [
        ["https://example.com/a?b=1", "_blank", "noopener noreferrer", "https://example.com/a?b=1"],
      ]);
      assert.equal(await u.page.locator('a[href^="javascript:" i]').count(), 0);
    }
  });
});
