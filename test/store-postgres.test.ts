/**
 * The store contract against the PostgreSQL store, on the PostgreSQL this machine and CI run
 * (HERALD_TEST_DATABASE_URL, else 127.0.0.1:5432 database `test`). Each test gets a schema of its
 * own and drops it. Without PostgreSQL these tests fail: they do not skip.
 */
import { PgStore } from "../server/store/pg-store.js";
import type { Store } from "../server/store/store.js";
import { pgSchema } from "./helpers.js";
import { storeContract } from "./store-contract.js";

for (const durability of ["full", "normal"] as const) {
  storeContract(`postgres (${durability})`, async () => {
    const schema = await pgSchema();
    let now = Date.now();
    const open = () => PgStore.open({ url: schema.url, durability, poolSize: 4, now: () => now });
    let store: Store = await open();
    const others: Store[] = [];
    return {
      get store() {
        return store;
      },
      async reopen() {
        await store.close();
        store = await open();
        return store;
      },
      setNow(ms: number) {
        now = ms;
      },
      // Another node on the same database: it must keep every guarantee beside the first.
      async openAnother() {
        const other = await open();
        others.push(other);
        return other;
      },
      async destroy() {
        await store.close();
        for (const o of others) await o.close();
        await schema.drop();
      },
    };
  });
}
