/**
 * PROTOCOL.md "Errors": every kind of bad input is answered with its code, the same connection
 * keeps serving and so does the server; the order of precedence of several faults.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Socket } from "socket.io-client";
import { type AnyReply, call, eventually, fails, ok, pub, record, send, sub } from "./conformance.js";
import { connect, type RawSocket, sleep, startServer, type TestServer } from "./helpers.js";

const MAX_PAYLOAD = 128 * 1024;

/** Sends a hand-written socket.io EVENT packet with an ack id and resolves with the reply. */
function rawCall(socket: RawSocket, json: string): Promise<AnyReply> {
  const engine = (socket as unknown as Socket).io.engine;
  const id = 900_000 + Math.floor(Math.random() * 99_999);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no reply to the raw packet")), 5000);
    const onMessage = (data: unknown) => {
      if (typeof data !== "string" || !data.startsWith(`3${id}[`)) return;
      clearTimeout(timer);
      engine.off("message", onMessage);
      resolve((JSON.parse(data.slice(String(id).length + 1)) as AnyReply[])[0]!);
    };
    engine.on("message", onMessage);
    engine.write(`2${id}${json}`);
  });
}

describe("protocol: bad input", () => {
  let server: TestServer;
  let alice: RawSocket;
  let n = 0;
  /** The same connection still serves: a publish and a history round trip. */
  const stillServing = async () => {
    await pub(alice, "room:alive", `alive-${n++}`);
    await ok(call(alice, "history", { topic: "room:alive", limit: 1 }));
  };
  before(async () => {
    server = await startServer({ maxPayload: MAX_PAYLOAD });
    alice = await connect(server.url, { user: "alice" });
    alice.on("disconnect", (reason) => assert.fail(`alice was disconnected: ${reason}`));
  });
  after(async () => {
    alice.removeAllListeners("disconnect");
    alice.close();
    await server.close();
  });

  const good = {
    publish: { id: "ok-1", topic: "room:e", payload: 1 },
    subscribe: { topic: "room:e" },
    unsubscribe: { topic: "room:e" },
    ack: { topic: "room:e", seq: 1 },
    history: { topic: "room:e" },
    presence: { topic: "room:e" },
    signal: { topic: "room:e", payload: 1 },
  } as const;

  it("answers BAD_REQUEST to a missing, non-object or extra argument of every event", async () => {
    for (const [event, args] of Object.entries(good)) {
      await fails(call(alice, event), "BAD_REQUEST");
      for (const bad of [null, "x", 1, true, [], [args]]) await fails(call(alice, event, bad), "BAD_REQUEST");
      await fails(call(alice, event, args, 2), "BAD_REQUEST");
      await fails(call(alice, event, args, args), "BAD_REQUEST");
    }
    await stillServing();
  });

  it("answers BAD_REQUEST to a missing, unknown, mistyped or null field", async () => {
    const cases: [string, Record<string, unknown>][] = [
      ["publish", { topic: "room:e", payload: 1 }],
      ["publish", { id: "x", payload: 1 }],
      ["publish", { id: "x", topic: "room:e" }],
      ["publish", { id: "x", topic: "room:e", payload: 1, extra: 1 }],
      ["publish", { id: "x", topic: "room:e", payload: 1, from: "bob" }],
      ["publish", { id: "x", topic: "room:e", payload: 1, seq: 1 }],
      ["publish", { id: 1, topic: "room:e", payload: 1 }],
      ["publish", { id: "x", topic: 1, payload: 1 }],
      ["publish", { id: "x", topic: ["room:e"], payload: 1 }],
      ["publish", { id: "x", topic: "room:e", payload: 1, key: 5 }],
      ["publish", { id: "x", topic: "room:e", payload: 1, key: null }],
      ["publish", { id: null, topic: "room:e", payload: 1 }],
      ["subscribe", {}],
      ["subscribe", { topic: "room:e", from: null }],
      ["subscribe", { topic: "room:e", from: 0 }],
      ["subscribe", { topic: "room:e", from: -1 }],
      ["subscribe", { topic: "room:e", from: 1.5 }],
      ["subscribe", { topic: "room:e", from: "1" }],
      ["subscribe", { topic: "room:e", group: null }],
      ["subscribe", { topic: "room:e", group: "bad group" }],
      ["subscribe", { topic: "room:e", extra: true }],
      ["unsubscribe", { topic: "room:e", group: null }],
      ["unsubscribe", { topic: "room:e", from: 1 }],
      ["ack", { topic: "room:e" }],
      ["ack", { seq: 1 }],
      ["ack", { topic: "room:e", seq: 0 }],
      ["ack", { topic: "room:e", seq: -3 }],
      ["ack", { topic: "room:e", seq: 2.5 }],
      ["ack", { topic: "room:e", seq: "1" }],
      ["ack", { topic: "room:e", seq: 1, group: null }],
      ["ack", { topic: "room:e", seq: 1, extra: 1 }],
      ["history", { topic: "room:e", limit: 0 }],
      ["history", { topic: "room:e", limit: 1.5 }],
      ["history", { topic: "room:e", limit: "10" }],
      ["history", { topic: "room:e", limit: null }],
      ["history", { topic: "room:e", before: 0 }],
      ["history", { topic: "room:e", before: null }],
      ["history", { topic: "room:e", after: -1 }],
      ["history", { topic: "room:e", after: 1.5 }],
      ["history", { topic: "room:e", from: 1 }],
      ["presence", {}],
      ["presence", { topic: "room:e", extra: 1 }],
      ["signal", { topic: "room:e" }],
      ["signal", { topic: "room:e", payload: 1, id: "x" }],
    ];
    for (const [event, args] of cases) {
      await fails(call(alice, event, args), "BAD_REQUEST").catch((err: Error) => {
        throw new Error(`${event} ${JSON.stringify(args)}: ${err.message}`);
      });
    }
    await stillServing();
  });

  it("answers BAD_REQUEST to bad ids and names", async () => {
    for (const id of ["", "x".repeat(65), "a b", "a.b", "a:b", "é", "a/b"]) {
      await fails(call(alice, "publish", { id, topic: "room:e", payload: 1 }), "BAD_REQUEST");
    }
    for (const group of ["", ".g", "g".repeat(65), "g:h"]) {
      await fails(call(alice, "subscribe", { topic: "room:e", group }), "BAD_REQUEST");
    }
    await stillServing();
  });

  it("answers INVALID_TOPIC to a topic name outside the forms, for every event that takes one", async () => {
    const topics = [
      "",
      "room",
      "room:",
      "room:a b",
      "room:.a",
      "room:-a",
      `room:${"r".repeat(65)}`,
      "Room:a",
      "user:",
      "user:a/b",
      "Broadcast",
      "broadcast:x",
      "dead:",
      "dead:room:a",
      "dead:room:a:",
      "dead:dead:room:a:g:h",
      "dead:broadcast",
      "topic",
      "r".repeat(1000),
      `dead:${"dead:".repeat(20_000)}room:a:g`,
    ];
    for (const topic of topics) {
      const where = `topic ${JSON.stringify(topic.slice(0, 40))}`;
      const expect = (r: Promise<AnyReply>) =>
        fails(r, "INVALID_TOPIC").catch((err: Error) => {
          throw new Error(`${where}: ${err.message}`);
        });
      await expect(call(alice, "publish", { id: "x", topic, payload: 1 }));
      await expect(call(alice, "subscribe", { topic }));
      await expect(call(alice, "unsubscribe", { topic }));
      await expect(call(alice, "ack", { topic, seq: 1 }));
      await expect(call(alice, "history", { topic }));
      await expect(call(alice, "presence", { topic }));
      await expect(call(alice, "signal", { topic, payload: 1 }));
    }
    await stillServing();
  });

  it("answers PAYLOAD_TOO_LARGE to an oversized payload of publish and signal", async () => {
    const big = "x".repeat(MAX_PAYLOAD);
    await fails(call(alice, "publish", { id: "big", topic: "room:e", payload: big }), "PAYLOAD_TOO_LARGE");
    await fails(call(alice, "signal", { topic: "room:e", payload: big }), "PAYLOAD_TOO_LARGE");
    // Huge JSON: many small values, far over the payload limit yet within socket.io's buffer.
    const wide = Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`k${i}`, i]));
    await fails(call(alice, "publish", { id: "wide", topic: "room:e", payload: wide }), "PAYLOAD_TOO_LARGE");
    await stillServing();
  });

  it("answers BAD_REQUEST to binary attachments", async () => {
    const bin = Buffer.from([1, 2, 3]);
    await fails(call(alice, "publish", { id: "bin", topic: "room:e", payload: bin }), "BAD_REQUEST");
    await fails(call(alice, "publish", { id: "bin", topic: "room:e", payload: { a: [1, { b: bin }] } }), "BAD_REQUEST");
    await fails(call(alice, "publish", { id: "bin", topic: "room:e", payload: new Uint8Array(4) }), "BAD_REQUEST");
    await fails(call(alice, "publish", { id: bin, topic: "room:e", payload: 1 }), "BAD_REQUEST");
    await fails(call(alice, "signal", { topic: "room:e", payload: bin }), "BAD_REQUEST");
    await fails(call(alice, "subscribe", { topic: bin }), "BAD_REQUEST");
    await fails(call(alice, "publish", bin), "BAD_REQUEST");
    const h = await ok(call(alice, "history", { topic: "room:e" }));
    assert.equal((h.messages as unknown[]).length, 0, "nothing was stored");
    await stillServing();
  });

  it("answers BAD_REQUEST to deeply nested JSON (100000 levels) without losing the connection", async () => {
    const deep = `${"[".repeat(100_000)}${"]".repeat(100_000)}`;
    const r1 = await rawCall(alice, `["publish",{"id":"deep","topic":"room:e","payload":${deep}}]`);
    await fails(r1, "BAD_REQUEST");
    await fails(rawCall(alice, `["signal",{"topic":"room:e","payload":${deep}}]`), "BAD_REQUEST");
    await fails(rawCall(alice, `["publish",{"id":"deep","topic":"room:e","payload":1,"x":${deep}}]`), "BAD_REQUEST");
    await fails(rawCall(alice, `["subscribe",${deep}]`), "BAD_REQUEST");
    await fails(rawCall(alice, `["nope",${deep}]`), "BAD_REQUEST");
    // Moderately deep is fine; what a client can still serialise but is too deep is refused too.
    let nested: unknown = 1;
    for (let i = 0; i < 10; i++) nested = [nested];
    await ok(call(alice, "publish", { id: "deep-10", topic: "room:e", payload: nested }));
    for (let i = 0; i < 1000; i++) nested = [nested];
    await fails(call(alice, "publish", { id: "deep-1010", topic: "room:e", payload: nested }), "BAD_REQUEST");
    await stillServing();
  });

  it("answers an unknown event BAD_REQUEST with a callback and ignores it without", async () => {
    await fails(call(alice, "nope"), "BAD_REQUEST");
    await fails(call(alice, "nope", { topic: "room:e" }), "BAD_REQUEST");
    await fails(call(alice, "Publish", good.publish), "BAD_REQUEST");
    await fails(call(alice, "messages", []), "BAD_REQUEST");
    await fails(call(alice, "error", {}), "BAD_REQUEST");
    const rec = record(alice);
    send(alice, "nope", { topic: "room:e" });
    send(alice, "nope");
    send(alice, "__proto__", {});
    send(alice, "constructor", {});
    await stillServing();
    assert.deepEqual(rec.events, []);
  });

  it("says nothing to a refused call without a callback, and keeps serving", async () => {
    const rec = record(alice);
    send(alice, "publish", { id: "bad id", topic: "room:e", payload: 1 });
    send(alice, "publish", { id: "x", topic: "nope", payload: 1 });
    send(alice, "signal", { topic: "nope", payload: 1 });
    send(alice, "ack", { topic: "room:e", seq: 0 });
    send(alice, "publish");
    await stillServing();
    await sleep(50);
    assert.deepEqual(rec.events, []);
  });

  it("keeps serving other connections and new ones after all this", async () => {
    const bob = await connect(server.url, { user: "bob" });
    const rec = record(bob);
    await sub(bob, "room:after");
    await pub(alice, "room:after", "after-1");
    await eventually(() => rec.messages().length === 1, "delivery");
    bob.close();
  });
});

describe("protocol: the order of precedence of faults", () => {
  let server: TestServer;
  let alice: RawSocket;
  before(async () => {
    server = await startServer({ maxPayload: 100, rateLimit: 2 });
    alice = await connect(server.url, { user: "alice" });
  });
  after(async () => {
    alice.close();
    await server.close();
  });

  it("answers BAD_REQUEST > INVALID_TOPIC > FORBIDDEN > PAYLOAD_TOO_LARGE > RATE_LIMITED", async () => {
    const big = "x".repeat(200);
    // BAD_REQUEST before INVALID_TOPIC and the rest.
    await fails(call(alice, "publish", { id: "bad id", topic: "nope", payload: big }), "BAD_REQUEST");
    await fails(call(alice, "publish", { id: "x", topic: "nope", payload: big, extra: 1 }), "BAD_REQUEST");
    await fails(call(alice, "subscribe", { topic: "nope", from: 0 }), "BAD_REQUEST");
    await fails(call(alice, "subscribe", { topic: "user:bob", from: 0 }), "BAD_REQUEST");
    // INVALID_TOPIC before PAYLOAD_TOO_LARGE.
    await fails(call(alice, "publish", { id: "x", topic: "nope", payload: big }), "INVALID_TOPIC");
    await fails(call(alice, "signal", { topic: "nope", payload: big }), "INVALID_TOPIC");
    // FORBIDDEN before PAYLOAD_TOO_LARGE (dead letters are written by the server only).
    await fails(call(alice, "publish", { id: "x", topic: "dead:room:a:g", payload: big }), "FORBIDDEN");
    await fails(call(alice, "signal", { topic: "dead:room:a:g", payload: big }), "FORBIDDEN");
    // Use up the bucket (2 tokens); refused calls above took none.
    await pub(alice, "room:p", "p-1");
    await pub(alice, "room:p", "p-2");
    await fails(call(alice, "publish", { id: "p-3", topic: "room:p", payload: 1 }), "RATE_LIMITED");
    // With an empty bucket: every earlier fault still wins over RATE_LIMITED.
    await fails(call(alice, "publish", { id: "bad id", topic: "room:p", payload: 1 }), "BAD_REQUEST");
    await fails(call(alice, "publish", { id: "x", topic: "nope", payload: 1 }), "INVALID_TOPIC");
    await fails(call(alice, "publish", { id: "x", topic: "dead:room:p:g", payload: 1 }), "FORBIDDEN");
    await fails(call(alice, "publish", { id: "x", topic: "room:p", payload: big }), "PAYLOAD_TOO_LARGE");
    await fails(call(alice, "signal", { topic: "room:p", payload: big }), "PAYLOAD_TOO_LARGE");
  });
});

describe("protocol: INTERNAL", () => {
  it("answers INTERNAL when the store fails, and the message is not accepted", async () => {
    const server = await startServer();
    const alice = await connect(server.url, { user: "alice" });
    try {
      await pub(alice, "room:i", "i-1");
      await server.herald.ctx.store.close();
      const err = await fails(call(alice, "publish", { id: "i-2", topic: "room:i", payload: 1 }), "INTERNAL");
      assert.doesNotMatch(err.message, /sqlite|database|stack/i, "no storage details on the wire");
      assert.equal(alice.connected, true);
    } finally {
      alice.close();
      await server.close();
    }
  });
});
