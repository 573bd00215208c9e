/**
 * The SDK's answers to a server that will not take it now or ever: across a graceful stop
 * (PROTOCOL.md: a stopping server answers UNAVAILABLE, to be retried elsewhere or later)
 * publishes sent while the server stops are sent again on the next connection and each is stored
 * once, none rejected; a handshake refused FORBIDDEN (an Origin the server does not allow) ends
 * the client with an error instead of retrying for ever.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { spawnServer, startServer, tempDir } from "./helpers.js";
import { sdkClients, waitFor } from "./sdk-fixtures.js";

const { client } = sdkClients("shut");
const ENV = { HERALD_RATE_LIMIT: "1000000" };

describe("SDK and a server that stops", () => {
  it("keeps publishes answered UNAVAILABLE and stores each once on the next server", async () => {
    const dataDir = tempDir();
    const first = await spawnServer(dataDir, ENV);
    const c = client(first.url);
    const errors: string[] = [];
    c.on("error", (e) => errors.push(e.code));
    c.connect();
    await waitFor("connected", () => c.state === "connected");
    const N = 4000;
    const refused: string[] = [];
    let next = 0;
    // 200 in flight, a new one as each is answered: publishes keep arriving while the server stops.
    const worker = async () => {
      while (next < N) {
        const i = next++;
        await c.publish("room:shut", { i }, { id: `p${i}` }).catch((e: { code?: string }) => {
          refused.push(e.code ?? String(e));
        });
      }
    };
    const workers = Array.from({ length: 200 }, worker);
    await waitFor("a quarter sent", () => next >= N / 4, 20000);
    const stopped = first.stop();
    assert.equal(await stopped, 0);
    const second = await spawnServer(dataDir, ENV, first.port);
    await Promise.all(workers);
    assert.deepEqual(refused, [], "no publish rejected");
    const reader = client(second.url);
    const got: number[] = [];
    reader.connect();
    await reader.subscribe(
      "room:shut",
      (m) => {
        got.push((m.payload as { i: number }).i);
      },
      { from: 1 },
    );
    await waitFor("all read", () => got.length >= N, 20000);
    assert.equal(got.length, N);
    assert.equal(new Set(got).size, N, "each stored once");
    assert.deepEqual(errors, []);
    await c.close();
    await reader.close();
    await second.stop();
  });

  it("closes with FORBIDDEN when the server refuses its Origin", async () => {
    const server = await startServer({ allowedOrigins: ["https://chat.example"] });
    try {
      const c = client(server.url, {
        socketOptions: { transports: ["websocket"], extraHeaders: { origin: "https://evil.example" } },
      });
      const errors: string[] = [];
      c.on("error", (e) => errors.push(e.code));
      c.connect();
      await waitFor("closed", () => c.state === "closed", 5000);
      assert.deepEqual(errors, ["FORBIDDEN"]);
      await assert.rejects(c.publish("room:o", 1), { code: "UNAVAILABLE" });
    } finally {
      await server.close();
    }
  });
});
