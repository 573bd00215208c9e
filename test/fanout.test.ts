/**
 * The fan-out seam (server/fanout.ts): readers never depend on a notice. A fan-out that loses
 * runs, as one between nodes may, loses no delivery: a stream or group that missed a run reads it
 * from the store at its topic's next run, and the last run's loss is recovered by `onResync`.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type DurableListener, type Fanout, LocalFanout } from "../server/fanout.js";
import type { Message } from "../shared/protocol.js";
import { call, ok, pub, sub } from "./conformance.js";
import { collect, connect, type RawSocket, sleep, startServer, type TestServer } from "./helpers.js";

/** Drops every run whose last seq is a multiple of 10, and resyncs only when asked. */
class LossyFanout implements Fanout {
  private readonly inner = new LocalFanout();
  private readonly resyncs: (() => void)[] = [];
  dropped = 0;

  publish(messages: Message[], durableAt: number): void {
    if (messages[messages.length - 1]!.seq % 10 === 0) {
      this.dropped++;
      return;
    }
    this.inner.publish(messages, durableAt);
  }

  onMessages(listener: DurableListener): void {
    this.inner.onMessages(listener);
  }

  onResync(listener: () => void): void {
    this.resyncs.push(listener);
  }

  resync(): void {
    for (const l of this.resyncs) l();
  }

  async close(): Promise<void> {}
}

describe("fan-out that loses runs", () => {
  const fanout = new LossyFanout();
  let server: TestServer;
  const sockets: RawSocket[] = [];

  before(async () => {
    server = await startServer({}, { fanout });
  });
  after(async () => {
    for (const s of sockets) s.close();
    await server.close();
  });

  it("delivers every message to streams and groups, in order, once; the last lost run after a resync", async () => {
    const [publisher, reader, member] = await Promise.all(
      ["p", "r", "m"].map((c) => connect(server.url, { user: `f${c}`, clientId: `f${c}` })),
    );
    sockets.push(publisher!, reader!, member!);
    const got = collect(reader!, { ack: true });
    await sub(reader!, "room:lossy");
    const grouped: number[] = [];
    member!.on("messages", (batch) => {
      for (const m of batch) {
        grouped.push(m.seq);
        member!.emit("ack", { topic: m.topic, seq: m.seq, group: "g" });
      }
    });
    await ok(call(member!, "subscribe", { topic: "room:lossy", group: "g" }));
    // One at a time: each publish is its own commit and its own run; 10, 20 and 30 are lost.
    for (let i = 1; i <= 30; i++) await pub(publisher!, "room:lossy", `l${i}`);
    await got.until(29);
    await sleep(200);
    assert.equal(fanout.dropped, 3);
    // 10 and 20 came with the runs after them; 30 has no run after it.
    assert.deepEqual(
      got.messages.map((m) => m.seq),
      Array.from({ length: 29 }, (_, i) => i + 1),
    );
    assert.deepEqual(
      grouped,
      Array.from({ length: 29 }, (_, i) => i + 1),
    );
    fanout.resync();
    await got.until(30);
    await sleep(100);
    assert.deepEqual(
      got.messages.map((m) => m.seq),
      Array.from({ length: 30 }, (_, i) => i + 1),
    );
    assert.deepEqual(
      grouped,
      Array.from({ length: 30 }, (_, i) => i + 1),
    );
  });
});
