/**
 * `/metrics` scraped while a load runs (issue 18): every scrape answers, no counter ever goes
 * back, and at the end the figures equal what was sent: publishes stored and refused by code,
 * deliveries to each subscriber and group member, acks, dead letters and dropped one-way sends.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { metric } from "./conformance.js";
import { connect, type RawSocket, sleep, startServer, type TestServer } from "./helpers.js";

const N = 2000;
const SUBSCRIBERS = 3;
const COUNTERS = [
  "herald_publishes_total",
  "herald_deliveries_total",
  "herald_acks_total",
  "herald_dead_letters_total",
];

describe("/metrics under load", () => {
  let server: TestServer;
  const sockets: RawSocket[] = [];

  before(async () => {
    // A member that never acks loses each lease after 200 ms and, with one attempt, its message.
    server = await startServer({ rateLimit: 1_000_000, ackTimeoutMs: 200, maxDeliveries: 1 });
  });
  after(async () => {
    for (const s of sockets) s.close();
    await server.close();
  });

  it("counts what was sent, exactly, while it is scraped every 20 ms", async () => {
    const publisher = await connect(server.url, { user: "load-p" });
    const subscribers = await Promise.all(
      Array.from({ length: SUBSCRIBERS }, (_, i) => connect(server.url, { user: `load-s${i}` })),
    );
    const idle = await connect(server.url, { user: "load-g" });
    sockets.push(publisher, ...subscribers, idle);
    let delivered = 0;
    let acks = 0;
    for (const s of subscribers) {
      await s.emitWithAck("subscribe", { topic: "room:load" });
      s.on("messages", (batch) => {
        delivered += batch.length;
        acks++;
        s.emit("ack", { topic: "room:load", seq: batch[batch.length - 1]!.seq });
      });
    }
    let handedOut = 0;
    idle.on("messages", (batch) => {
      handedOut += batch.length;
    });
    await idle.emitWithAck("subscribe", { topic: "room:load", group: "slow" });

    const scrapes: string[] = [];
    let loading = true;
    const scraper = (async () => {
      while (loading) {
        const res = await fetch(`${server.url}/metrics`);
        assert.equal(res.status, 200);
        scrapes.push(await res.text());
        await sleep(20);
      }
    })();
    let next = 0;
    await Promise.all(
      Array.from({ length: 100 }, async () => {
        while (next < N) {
          const i = next++;
          const reply = await publisher.emitWithAck("publish", { id: `load-${i}`, topic: "room:load", payload: { i } });
          assert.equal(reply.ok, true);
        }
      }),
    );
    // Refused ones, by code: a bad topic answered, and one-way sends over nothing (dropped).
    for (let i = 0; i < 5; i++) {
      const reply = await publisher.emitWithAck("publish", { id: `bad-${i}`, topic: "nope", payload: 1 });
      assert.equal(reply.ok, false);
    }
    for (let i = 0; i < 3; i++) publisher.emit("publish", { id: `drop-${i}`, topic: "nope", payload: 1 });
    // Until every subscriber has all, and every message the idle member held has died.
    const deadline = Date.now() + 20_000;
    let text = "";
    for (;;) {
      text = await (await fetch(`${server.url}/metrics`)).text();
      const done = delivered === N * SUBSCRIBERS && metric(text, "herald_dead_letters_total") === N;
      if (done && metric(text, "herald_dropped_total", { reason: "INVALID_TOPIC" }) === 3) break;
      assert.ok(Date.now() < deadline, `delivered ${delivered}, dead ${metric(text, "herald_dead_letters_total")}`);
      await sleep(50);
    }
    loading = false;
    await scraper;

    assert.ok(scrapes.length >= 5, `${scrapes.length} scrapes during the load`);
    for (const name of COUNTERS) {
      const series = [...scrapes, text].map((t) => metric(t, name));
      for (let i = 1; i < series.length; i++) assert.ok(series[i]! >= series[i - 1]!, `${name} went back`);
    }
    assert.equal(metric(text, "herald_publishes_total", { result: "stored" }), N);
    assert.equal(metric(text, "herald_publishes_total", { result: "INVALID_TOPIC" }), 5 + 3, "answered or not");
    assert.equal(metric(text, "herald_dropped_total", { reason: "INVALID_TOPIC" }), 3);
    assert.equal(metric(text, "herald_dead_letters_total"), N);
    // Each subscriber got every message once; the idle member was handed each once (one attempt).
    assert.equal(handedOut, N);
    assert.equal(metric(text, "herald_deliveries_total"), N * SUBSCRIBERS + N);
    assert.equal(metric(text, "herald_publish_durable_seconds_count"), N + N, "the publishes and the dead letters");
    await sleep(100);
    assert.equal(metric(await (await fetch(`${server.url}/metrics`)).text(), "herald_acks_total"), acks);
  });
});
