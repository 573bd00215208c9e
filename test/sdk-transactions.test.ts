/**
 * The SDK's transactional publish: `transaction` prepares, runs the local work, and commits when it
 * resolved or rolls back when it threw; `onTxnCheck` answers the hub's checks from the app's own
 * records, and a transaction still running here is answered "unknown" without asking the app.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { HeraldError, Message } from "../shared/client/index.js";
import { call, fails, ok } from "./conformance.js";
import { connect, sleep, startServer, type TestServer } from "./helpers.js";
import { sdkClients, waitFor } from "./sdk-fixtures.js";

const CHECK_MS = 150;
const { connected } = sdkClients("tx");

describe("sdk: transactions", () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ txnCheckMs: CHECK_MS, txnMaxChecks: 20 });
  });
  after(() => server.close());

  it("commits once the local work resolved, and the message is delivered with its seq", async () => {
    const reader = await connected(server.url, "reader");
    const got: Message[] = [];
    await reader.subscribe("room:orders", async (m) => {
      got.push(m);
    });
    const shop = await connected(server.url, "shop");
    const saved: string[] = [];
    const done = await shop.transaction("room:orders", { order: 7 }, async ({ id }) => {
      await sleep(20);
      assert.equal(got.length, 0, "nothing is delivered while the local work runs");
      saved.push(id);
      return "saved";
    });
    assert.equal(done.result, "saved");
    assert.equal(done.duplicate, false);
    await waitFor("the delivery", () => got.length === 1);
    assert.deepEqual([got[0]!.seq, got[0]!.id, got[0]!.payload], [done.seq, saved[0], { order: 7 }]);
  });

  it("rolls back when the local work throws, passes the throw on, and delivers nothing", async () => {
    const shop = await connected(server.url, "shop2");
    let id = "";
    await assert.rejects(
      shop.transaction("room:orders2", "never", (txn) => {
        id = txn.id;
        throw new Error("the insert failed");
      }),
      /the insert failed/,
    );
    const raw = await connect(server.url, { user: "shop2" });
    await fails(call(raw, "commit", { id }), "NOT_FOUND");
    assert.equal((await ok(call(raw, "history", { topic: "room:orders2" }))).head, 0);
    raw.close();
  });

  it("answers txn-check from the app's records after the preparing process died", async () => {
    const records = new Map<string, "commit" | "rollback">([
      ["crash-saved", "commit"],
      ["crash-lost", "rollback"],
    ]);
    const asked: string[] = [];
    const survivor = await connected(server.url, "billing");
    survivor.onTxnCheck(({ id }) => {
      asked.push(id);
      return records.get(id) ?? "unknown";
    });
    const reader = await connected(server.url, "reader3");
    const got: Message[] = [];
    await reader.subscribe("room:bills", async (m) => {
      got.push(m);
    });
    // The process that prepared them is gone before it could commit.
    const crashed = await connect(server.url, { user: "billing", clientId: "crashed" });
    await ok(call(crashed, "prepare", { id: "crash-saved", topic: "room:bills", payload: "kept" }));
    await ok(call(crashed, "prepare", { id: "crash-lost", topic: "room:bills", payload: "dropped" }));
    crashed.close();
    await waitFor("the committed one delivered", () => got.length === 1, 3000);
    await waitFor("both asked", () => asked.includes("crash-lost"), 3000);
    await sleep(CHECK_MS * 2);
    assert.deepEqual(
      got.map((m) => m.id),
      ["crash-saved"],
    );
  });

  it("answers unknown for a transaction it is still running, without asking the app", async () => {
    const shop = await connected(server.url, "slowshop");
    let asked = 0;
    shop.onTxnCheck(() => {
      asked++;
      return "rollback";
    });
    const done = await shop.transaction("room:slow", 1, () => sleep(CHECK_MS * 3));
    assert.equal(asked, 0);
    assert.equal(done.seq, 1);
  });

  it("reports a throwing txn-check handler and answers unknown", async () => {
    const svc = await connected(server.url, "thrower");
    const errors: HeraldError[] = [];
    svc.on("error", (e) => errors.push(e));
    svc.onTxnCheck(() => {
      throw new Error("db down");
    });
    const raw = await connect(server.url, { user: "thrower", clientId: "gone" });
    await ok(call(raw, "prepare", { id: "t-throw", topic: "room:throw", payload: 1 }));
    raw.close();
    await waitFor("the error", () => errors.length >= 1, 3000);
    assert.equal(errors[0]!.code, "INTERNAL");
    const again = await connect(server.url, { user: "thrower", clientId: "again" });
    await ok(call(again, "rollback", { id: "t-throw" }));
    again.close();
  });
});
