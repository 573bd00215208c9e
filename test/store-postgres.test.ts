/**
 * The store contract against the PostgreSQL store, on the PostgreSQL this machine and CI run
 * (HERALD_TEST_DATABASE_URL, else 127.0.0.1:5432 database `test`). Each test gets a schema of its
 * own and drops it. Without PostgreSQL these tests fail: they do not skip.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type pg from "pg";
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

describe("postgres store - across nodes", () => {
  it("a publish of an id pending as a half message on another node is CONFLICT, alone in its batch", async () => {
    const schema = await pgSchema();
    const [a, b] = [
      await PgStore.open({ url: schema.url, durability: "full", poolSize: 2 }),
      await PgStore.open({ url: schema.url, durability: "full", poolSize: 2 }),
    ];
    try {
      const m = (id: string) => ({ id, topic: "room:x", from: "ann", payload: id, json: JSON.stringify(id) });
      await a.prepare({ ...m("t1"), clientId: "a1", preparedAt: Date.now(), checks: 0 });
      const [refused, other] = await Promise.allSettled([b.append(m("t1")), b.append(m("p1"))]);
      assert.equal(refused.status, "rejected");
      assert.equal((refused as PromiseRejectedResult).reason.code, "CONFLICT");
      assert.equal(other.status === "fulfilled" && other.value.message.seq, 1, "the rest of the batch is stored");
      const committed = await a.commitPrepared(m("t1"));
      assert.deepEqual([committed.message.seq, committed.duplicate], [2, false]);
      const again = await b.append(m("t1"));
      assert.deepEqual([again.message.seq, again.duplicate], [2, true], "committed: a duplicate now");
    } finally {
      await a.close();
      await b.close();
      await schema.drop();
    }
  });
});

describe("postgres store - settings", () => {
  it("maps HERALD_DURABILITY to synchronous_commit on every connection, beside the URL's own options", async () => {
    const schema = await pgSchema();
    try {
      for (const [durability, expected] of [
        ["full", "on"],
        ["normal", "off"],
      ] as const) {
        const store = await PgStore.open({ url: schema.url, durability, poolSize: 3 });
        // The store's own connections: the setting is per session.
        const { writer, pool } = store as unknown as Record<"writer" | "pool", pg.Pool>;
        for (const p of [writer, pool]) {
          const { rows } = await p.query("SELECT current_setting('synchronous_commit') AS s, current_schema() AS c");
          assert.deepEqual(rows[0], { s: expected, c: schema.name }, durability);
        }
        await store.close();
      }
    } finally {
      await schema.drop();
    }
  });
});
