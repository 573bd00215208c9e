/**
 * The publish path's latency histograms in /metrics (issue 16): each stage counted once per
 * message, each delivery once under the path it took, Prometheus' cumulative bucket shape, and the
 * bucket arithmetic of server/latency.ts; beside them the replay batches, connections by transport
 * and the store's size.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Registry } from "prom-client";
import { type Latency, StageHistogram } from "../server/latency.js";
import { call, metric, ok, pub, sub } from "./conformance.js";
import { collect, connect, type RawSocket, startServer, type TestServer } from "./helpers.js";

describe("latency metrics", () => {
  let server: TestServer;
  const sockets: RawSocket[] = [];

  before(async () => {
    server = await startServer();
  });
  after(async () => {
    for (const s of sockets) s.close();
    await server.close();
  });

  it("counts every stage once per publish and every delivery under its path", async () => {
    const [publisher, live, late, member] = await Promise.all(
      ["p", "l", "r", "g"].map((c) => connect(server.url, { user: `u${c}`, clientId: c })),
    );
    sockets.push(publisher!, live!, late!, member!);
    const liveGot = collect(live!, { ack: true });
    await sub(live!, "room:lat");
    const memberGot = collect(member!);
    member!.on("messages", (batch) => {
      for (const m of batch) member!.emit("ack", { topic: m.topic, seq: m.seq, group: "g" });
    });
    await ok(call(member!, "subscribe", { topic: "room:lat", group: "g" }));
    for (let i = 0; i < 20; i++) await pub(publisher!, "room:lat", `s${i}`);
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${server.url}/api/v1/publish`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-herald-user": "up" },
        body: JSON.stringify({ id: `h${i}`, topic: "room:lat", payload: i }),
      });
      assert.equal(res.status, 200);
    }
    await liveGot.until(25);
    await memberGot.until(25);
    const lateGot = collect(late!);
    await sub(late!, "room:lat", 1);
    await lateGot.until(25);

    const text = await (await fetch(`${server.url}/metrics`)).text();
    const count = (name: string, labels: Record<string, string> = {}) => metric(text, `${name}_count`, labels);
    assert.equal(count("herald_publish_durable_seconds"), 25, "socket and HTTP publishes");
    for (const stage of ["wait", "commit", "sync"]) {
      assert.equal(count("herald_publish_stage_seconds", { stage }), 25, stage);
    }
    assert.equal(count("herald_publish_stage_seconds", { stage: "reply" }), 20, "socket replies only");
    assert.equal(count("herald_durable_delivered_seconds", { path: "live" }), 25);
    assert.equal(count("herald_durable_delivered_seconds", { path: "read" }), 25);
    assert.equal(count("herald_durable_delivered_seconds", { path: "group" }), 25);
    assert.equal(metric(text, "herald_deliveries_total"), 75);
    assert.ok(metric(text, "herald_replay_batches_total") >= 1, "the late reader read from the store");
    assert.equal(metric(text, "herald_connections", { transport: "websocket" }), 4);
    assert.equal(metric(text, "herald_connections", { transport: "polling" }), 0);
    assert.ok(metric(text, "herald_store_bytes") > 4096, "the database and its WAL");
    // `full`: the sync stage is an fdatasync, so it took some time.
    assert.ok(metric(text, "herald_publish_stage_seconds_sum", { stage: "sync" }) > 0);

    // Cumulative buckets, ending at +Inf with the count; the node label on each.
    const buckets = text
      .split("\n")
      .filter((l) => l.startsWith('herald_publish_durable_seconds_bucket{le="'))
      .map((l) => Number(l.split(" ").pop()));
    assert.ok(buckets.length > 30);
    for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i]! >= buckets[i - 1]!);
    assert.equal(buckets[buckets.length - 1], 25);
    assert.match(text, /^herald_publish_durable_seconds_bucket\{le="\+Inf",node="[^"]+"\} 25$/m);
  });
});

describe("Latency buckets", () => {
  const bucketsOf = (observe: (l: Latency) => void) => {
    const registry = new Registry();
    const h = new StageHistogram("t_seconds", "t", "stage", ["a"], registry);
    observe(h.stage("a"));
    return registry.metrics();
  };

  it("puts a value in the first bound at or above it, weighted, with sum and count", async () => {
    const text = await bucketsOf((l) => {
      l.observe(0.00001);
      l.observe(0.000015, 2);
      l.observe(0.001);
      l.observe(100);
    });
    const at = (le: string) => metric(text, "t_seconds_bucket", { le });
    assert.equal(at("0.00001"), 1);
    assert.equal(at("0.0000141"), 1, "1.5e-5 is above √2·1e-5");
    assert.equal(at("0.00002"), 3);
    assert.equal(at("0.000905"), 3);
    assert.equal(at("0.00128"), 4, "1 ms is above the bound 0.905 ms, below 1.28 ms");
    assert.equal(at("10.5"), 4, "100 s is past the last bound");
    assert.equal(at("+Inf"), 5);
    assert.equal(metric(text, "t_seconds_count"), 5);
    assert.ok(Math.abs(metric(text, "t_seconds_sum") - (0.00001 + 0.00003 + 0.001 + 100)) < 1e-9);
  });
});
