import assert from "node:assert/strict";
import fs from "node:fs";
import { after, before, it } from "node:test";
import { io } from "socket.io-client";
import { connect, sleep, spawnServer, startServer, type TestServer, tempDir } from "./helpers.js";

let server: TestServer;
before(async () => {
  server = await startServer();
});
after(() => server.close());

it("hub - a client that goes away during the handshake leaves no session, stream or presence behind", async () => {
  const ghost = await connect(server.url, { user: "ghost", clientId: "ghost-1" });
  assert.equal((await ghost.emitWithAck("subscribe", { topic: "room:lifecycle" })).ok, true);
  ghost.close();
  await sleep(100);
  // Connect again with the same client and drop the transport right after the CONNECT packet,
  // while the server is still resuming its subscriptions.
  for (let i = 0; i < 5; i++) {
    const socket = io(server.url, {
      auth: { clientId: "ghost-1", user: "ghost" },
      transports: ["websocket"],
      reconnection: false,
      forceNew: true,
    });
    socket.io.engine.once("open", () => setImmediate(() => socket.io.engine.close()));
    await sleep(150);
    socket.close();
  }
  await sleep(200);
  const watcher = await connect(server.url, { user: "watcher" });
  assert.equal((await watcher.emitWithAck("subscribe", { topic: "room:lifecycle" })).ok, true);
  assert.deepEqual(await watcher.emitWithAck("presence", { topic: "room:lifecycle" }), {
    ok: true,
    users: ["watcher"],
  });
  const stats = (await (
    await fetch(`${server.url}/api/v1/stats`, { headers: { "x-herald-user": "admin" } })
  ).json()) as {
    connections: number;
  };
  assert.equal(stats.connections, 1, "only the watcher is live");
  watcher.close();
});

it("hub - SIGTERM under load: stops within 5 s, and every publish answered ok is in the log after a restart", async () => {
  const dataDir = tempDir();
  let child = await spawnServer(dataDir, { HERALD_RATE_LIMIT: "1000000" });
  const publisher = await connect(child.url, { user: "pub", clientId: "pub-1" });
  const answered = new Map<string, number>();
  const refused = new Set<string>();
  let n = 0;
  let running = true;
  const worker = async () => {
    while (running) {
      const id = `t${n++}`;
      try {
        const reply = await publisher.timeout(2000).emitWithAck("publish", { id, topic: "room:term", payload: n });
        if (reply.ok) answered.set(id, reply.seq);
        else refused.add(reply.error.code);
      } catch {
        return; // disconnected: no answer, so nothing was promised
      }
    }
  };
  const workers = Array.from({ length: 20 }, worker);
  await sleep(300);
  const started = Date.now();
  const code = await child.stop();
  running = false;
  await Promise.all(workers);
  assert.equal(code, 0);
  assert.ok(Date.now() - started < 5000, "stopped within 5 s");
  assert.ok(answered.size > 100, `only ${answered.size} publishes answered before the stop`);
  assert.deepEqual(
    [...refused].filter((c) => c !== "UNAVAILABLE"),
    [],
  );
  publisher.close();

  child = await spawnServer(dataDir);
  const reader = await connect(child.url, { user: "reader" });
  const seen = new Map<string, number>();
  for (let after = 0; ; ) {
    const reply = await reader.emitWithAck("history", { topic: "room:term", after, limit: 500 });
    assert.ok(reply.ok);
    if (reply.messages.length === 0) break;
    for (const m of reply.messages) seen.set(m.id, m.seq);
    after = reply.messages[reply.messages.length - 1]!.seq;
  }
  for (const [id, seq] of answered) assert.equal(seen.get(id), seq, `${id} answered with seq ${seq}`);
  reader.close();
  await child.kill();
  fs.rmSync(dataDir, { recursive: true, force: true });
});
