/**
 * The SDK's remote calls: `request` resolves with the responder's result and rejects with a typed
 * HeraldError (the responder's own code, UNAVAILABLE, TIMEOUT); `onRequest` answers with what its
 * handler resolves to, refuses with a thrown HeraldError's code, INTERNAL for any other throw and
 * NOT_FOUND for a method it has no handler for.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { HeraldError } from "../shared/client/index.js";
import { startServer, type TestServer } from "./helpers.js";
import { sdkClients, waitFor } from "./sdk-fixtures.js";

const { client, connected } = sdkClients("rq");

/** Rejects with the HeraldError `promise` rejects with, or fails. */
async function refusal(promise: Promise<unknown>): Promise<HeraldError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof HeraldError, `a HeraldError, got ${err}`);
    return err;
  }
  assert.fail("expected a refusal");
}

describe("sdk: request and onRequest", () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  it("calls a handler of another user's client and gets its result", async () => {
    const svc = await connected(server.url, "pricing");
    const seen: unknown[] = [];
    svc.onRequest("quote", async (params, { from }) => {
      seen.push([from, params]);
      return { total: (params as { n: number }).n * 2 };
    });
    svc.onRequest("nothing", () => undefined);
    const app = await connected(server.url, "shop");
    assert.deepEqual(await app.request("pricing", "quote", { n: 21 }), { total: 42 });
    assert.deepEqual(seen, [["shop", { n: 21 }]]);
    assert.equal(await app.request("pricing", "nothing"), null);
  });

  it("rejects with the responder's code, INTERNAL for a plain throw, NOT_FOUND for no handler", async () => {
    const svc = await connected(server.url, "orders");
    svc.onRequest("get", () => {
      throw new HeraldError("NOT_FOUND", "no order 7");
    });
    svc.onRequest("crash", () => {
      throw new Error("disk on fire");
    });
    const app = await connected(server.url, "web");
    const notFound = await refusal(app.request("orders", "get", { id: 7 }));
    assert.deepEqual([notFound.code, notFound.message], ["NOT_FOUND", "no order 7"]);
    const crash = await refusal(app.request("orders", "crash"));
    assert.deepEqual([crash.code, crash.message], ["INTERNAL", "disk on fire"]);
    assert.equal((await refusal(app.request("orders", "nope"))).code, "NOT_FOUND");
    // A second handler for a method is refused; the first one's remover frees the method.
    const off = svc.onRequest("once", () => 1);
    assert.throws(() => svc.onRequest("once", () => 2), HeraldError);
    off();
    svc.onRequest("once", () => 2);
    assert.equal(await app.request("orders", "once"), 2);
  });

  it("is UNAVAILABLE with nobody to answer or offline, TIMEOUT when the handler is too slow", async () => {
    const app = await connected(server.url, "lonely");
    assert.equal((await refusal(app.request("ghost", "x"))).code, "UNAVAILABLE");
    const slow = await connected(server.url, "sloth");
    slow.onRequest("wait", () => new Promise((resolve) => setTimeout(() => resolve("late"), 500)));
    assert.equal((await refusal(app.request("sloth", "wait", undefined, { timeoutMs: 100 }))).code, "TIMEOUT");
    const offline = client(server.url, { user: "offline" });
    assert.equal((await refusal(offline.request("sloth", "wait"))).code, "UNAVAILABLE");
  });

  it("is UNAVAILABLE when the responder goes away before it answers", async () => {
    const svc = await connected(server.url, "flaky");
    let started = false;
    svc.onRequest("hang", () => {
      started = true;
      return new Promise(() => {});
    });
    const app = await connected(server.url, "caller");
    const pending = app.request("flaky", "hang", undefined, { timeoutMs: 5000 });
    await waitFor("the handler started", () => started);
    await svc.close();
    assert.equal((await refusal(pending)).code, "UNAVAILABLE");
  });
});
