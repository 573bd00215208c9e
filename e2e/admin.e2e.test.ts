/**
 * The operator's page (`/admin`) in real Chromium against a real server with real traffic: the
 * charts move, a growing backlog shows, dead letters appear with their payloads and Retry hands
 * them back, and a user who is not an admin is refused (the page and its HTTP routes).
 */
import assert from "node:assert/strict";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import type { Browser, Locator, Page } from "playwright-core";
import { connect, type RawSocket, ROOT, type TestServer } from "../test/helpers.js";
import { eventually, launchBrowser, startChatServer } from "./fixtures.js";

let server: TestServer;
let browser: Browser;
const sockets: RawSocket[] = [];
let publishing = true;
let published = 0;
let publisher: Promise<void> | undefined;

before(async () => {
  // In dev auth with HERALD_ADMINS, only "boss" is an admin. A member that never acks loses each
  // lease after 300 ms, and with one delivery allowed its messages die at once.
  [server, browser] = await Promise.all([
    startChatServer({ admins: ["boss"], ackTimeoutMs: 300, maxDeliveries: 1 }),
    launchBrowser(),
  ]);
  const [shop, worker, archivist] = await Promise.all(
    ["shop", "worker", "archivist"].map((user) => connect(server.url, { user, clientId: `adm-${user}` })),
  );
  sockets.push(shop!, worker!);
  await worker!.emitWithAck("subscribe", { topic: "room:orders", group: "billing" });
  // A group whose only member went away: its backlog grows with every publish.
  await archivist!.emitWithAck("subscribe", { topic: "room:orders", group: "archive" });
  archivist!.close();
  publisher = (async () => {
    while (publishing) {
      published++;
      await shop!.emitWithAck("publish", {
        id: `adm-${published}`,
        topic: "room:orders",
        payload: { order: published },
      });
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
});

after(async () => {
  publishing = false;
  await publisher;
  for (const s of sockets) s.close();
  await browser?.close();
  await server?.close();
});

async function openAdmin(user: string): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1300, height: 1000 } });
  const page = await context.newPage();
  page.on("pageerror", (err) => console.error(`[admin ${user}] page error:`, err));
  await page.goto(`${server.url}/admin?user=${user}`);
  return page;
}

/** What a locator's element says (Playwright's textContent; "" for none). */
const text = async (l: Locator): Promise<string> => (await l.textContent()) ?? "";

/** A column of the groups table, by the group's name. */
async function groupCell(page: Page, group: string, column: number): Promise<string> {
  return text(page.getByTestId("groups").locator("tbody tr", { hasText: group }).locator("td").nth(column));
}

/** Waits until the rates chart has drawn `n` points (one a second). */
async function chartPoints(page: Page, n: number, ms: number): Promise<void> {
  const points = async () => Number(await page.getByTestId("chart-rates").getAttribute("data-points"));
  await eventually(async () => (await points()) >= n, ms, `${n} chart points`);
}

/** Opens a group's dead letters from its row in the groups table. */
async function openDeadLetters(page: Page, group: string): Promise<void> {
  const row = page.getByTestId("groups").locator("tbody tr", { hasText: group });
  await row.getByRole("button", { name: "Dead letters" }).click();
}

describe("the operator's page", () => {
  it("draws live charts of the traffic, and a group's growing backlog", async () => {
    const page = await openAdmin("boss");
    await chartPoints(page, 3, 15000);
    for (const chart of ["chart-rates", "chart-latency", "chart-connections", "chart-lag"]) {
      assert.equal(await page.getByTestId(chart).locator("canvas").count(), 1, chart);
    }
    const rate = Number(/(\d+) publishes\/s/.exec(await text(page.getByTestId("rates")))![1]);
    assert.ok(rate >= 10 && rate <= 100, `publishes/s shown: ${rate}`);
    const first = Number(await groupCell(page, "archive", 2));
    await eventually(
      async () => Number(await groupCell(page, "archive", 2)) >= first + 20,
      15000,
      "the backlog to grow",
    );
    assert.equal(await groupCell(page, "archive", 4), "0", "no live member");
    await page.context().close();
  });

  it("lists a group's dead letters with their payloads, and Retry hands them back", async () => {
    const page = await openAdmin("boss");
    await openDeadLetters(page, "billing");
    const panel = page.getByTestId("dead-letters");
    await eventually(async () => (await panel.locator("tbody tr").count()) > 0, 15000, "dead letters");
    assert.match(await text(panel.locator("tbody tr").first()), /\{"order":\d+\}/);
    await panel.getByRole("button", { name: "Retry all" }).click();
    const status = await text(panel.getByRole("status"));
    const handed = Number(/(\d+) dead letters? handed back to billing/.exec(status)?.[1]);
    assert.ok(handed >= 1, status);
    await page.context().close();
  });

  it("takes the README's screenshot (docs/admin-screenshot.png with HERALD_UPDATE_SCREENSHOT=1)", async () => {
    const page = await openAdmin("boss");
    await chartPoints(page, 8, 20000);
    await openDeadLetters(page, "billing");
    await eventually(
      async () => (await page.getByTestId("dead-letters").locator("tbody tr").count()) > 0,
      15000,
      "dead letters",
    );
    await page.setViewportSize({ width: 1300, height: 860 });
    // The README's picture is refreshed on request only, so that a test run leaves the tree clean.
    const file = process.env.HERALD_UPDATE_SCREENSHOT
      ? path.join(ROOT, "docs/admin-screenshot.png")
      : path.join(os.tmpdir(), "herald-admin-screenshot.png");
    await page.screenshot({ path: file });
    await page.context().close();
  });

  it("refuses a user who is not an admin, the page and its routes", async () => {
    const page = await openAdmin("bob");
    await page.getByRole("heading", { name: "Only admins can see this page" }).waitFor({ timeout: 15000 });
    assert.match(await text(page.getByRole("alert")), /Signed in as bob/);
    const headers = { "x-herald-user": "bob", "content-type": "application/json" };
    assert.equal((await fetch(`${server.url}/api/v1/stats`, { headers })).status, 403);
    const retry = await fetch(`${server.url}/api/v1/topics/room:orders/groups/billing/retry`, {
      method: "POST",
      headers,
      body: "{}",
    });
    assert.equal(retry.status, 403);
    await page.context().close();
  });
});
