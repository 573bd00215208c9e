import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { storeContract } from "../server/store/contract.js";
import { SqliteStore } from "../server/store/sqlite-store.js";
import type { Store } from "../server/store/store.js";
import { ROOT, tempDir } from "./helpers.js";

for (const durability of ["full", "normal"] as const) {
  storeContract(`sqlite (${durability})`, async () => {
    const dataDir = tempDir();
    let now = Date.now();
    const open = () => new SqliteStore({ dataDir, durability, now: () => now });
    let store: Store = open();
    return {
      get store() {
        return store;
      },
      async reopen() {
        await store.close();
        store = open();
        return store;
      },
      setNow(ms: number) {
        now = ms;
      },
      async destroy() {
        await store.close();
        fs.rmSync(dataDir, { recursive: true, force: true });
      },
    };
  });
}

describe("sqlite store - a process with nothing else to do", () => {
  it("stays alive while writes wait for the WAL checkpoint, and finishes them", () => {
    // Past 16 MiB of WAL the writer holds commits until the checkpointer thread has caught up;
    // that thread is unref'd, so a process whose only work is those writes used to exit early.
    const dataDir = tempDir();
    const script = `
      import { SqliteStore } from ${JSON.stringify(path.join(ROOT, "server/store/sqlite-store.ts"))};
      const store = new SqliteStore({ dataDir: ${JSON.stringify(dataDir)}, durability: "normal" });
      const json = JSON.stringify("x".repeat(100_000));
      const done = await Promise.all(
        Array.from({ length: 300 }, (_, i) => store.append({ id: "m" + i, topic: "room:w", from: "u", payload: null, json })),
      );
      await store.close();
      console.log("stored " + done.length);
    `;
    try {
      const out = execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
        cwd: ROOT,
        encoding: "utf8",
        timeout: 60_000,
      });
      assert.match(out, /stored 300/);
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
