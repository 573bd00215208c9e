import fs from "node:fs";
import { storeContract } from "../server/store/contract.js";
import { SqliteStore } from "../server/store/sqlite-store.js";
import type { Store } from "../server/store/store.js";
import { tempDir } from "./helpers.js";

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
