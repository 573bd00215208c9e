import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { io } from "socket.io-client";
import { connect, sleep, startServer, type TestServer } from "./helpers.js";

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
