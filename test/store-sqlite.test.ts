import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import Database from "better-sqlite3";
import { SqliteStore, WAL_LIMIT } from "../server/store/sqlite-store.js";
import type { Store } from "../server/store/store.js";
import { ROOT, tempDir } from "./helpers.js";
import { storeContract } from "./store-contract.js";

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
      // Every instance on the same files would give out seqs from its own memory: refused.
      openAnother: async () => open(),
      async destroy() {
        await store.close();
        fs.rmSync(dataDir, { recursive: true, force: true });
      },
    };
  });
}

describe("sqlite store - a process with nothing else to do", () => {
  it("stays alive while writes wait for the WAL checkpoint, finishes them, and keeps the WAL bounded", () => {
    // Past WAL_LIMIT the writer holds commits until the checkpointer thread has caught up; that
    // thread is unref'd, so a process whose only work is those writes used to exit early. Written
    // in commits of 5 MB, 100 MB of messages leave a WAL of at most the bound and one commit.
    const dataDir = tempDir();
    const script = `
      import fs from "node:fs";
      import { SqliteStore } from ${JSON.stringify(path.join(ROOT, "server/store/sqlite-store.ts"))};
      const store = new SqliteStore({ dataDir: ${JSON.stringify(dataDir)}, durability: "normal" });
      const json = JSON.stringify("x".repeat(100_000));
      let stored = 0;
      let largest = 0;
      for (let batch = 0; batch < 20; batch++) {
        const done = await Promise.all(
          Array.from({ length: 50 }, (_, i) => store.append({ id: "m" + batch + "x" + i, topic: "room:w", from: "u", payload: null, json })),
        );
        stored += done.length;
        largest = Math.max(largest, fs.statSync(${JSON.stringify(path.join(dataDir, "herald.db-wal"))}).size);
      }
      await store.close();
      console.log("stored " + stored + " wal " + largest);
    `;
    try {
      const out = execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
        cwd: ROOT,
        encoding: "utf8",
        timeout: 60_000,
      });
      const [, stored, wal] = /stored (\d+) wal (\d+)/.exec(out) ?? [];
      assert.equal(Number(stored), 1000);
      assert.ok(Number(wal) <= WAL_LIMIT + 6 * 2 ** 20, `the WAL reached ${wal} bytes`);
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe("sqlite store - one owner per data directory", () => {
  it("refuses a second store on the same directory, in this process or another, and frees it on close", async () => {
    const dataDir = tempDir();
    try {
      const first = new SqliteStore({ dataDir, durability: "full" });
      await first.append({ id: "o1", topic: "room:o", from: "u", payload: 1, json: "1" });
      assert.throws(() => new SqliteStore({ dataDir, durability: "full" }), /in use by another store of this process/);
      // Another process: the real case, `npm start` run twice.
      const script = `
        import { SqliteStore } from ${JSON.stringify(path.join(ROOT, "server/store/sqlite-store.ts"))};
        try { new SqliteStore({ dataDir: ${JSON.stringify(dataDir)}, durability: "full" }); console.log("opened"); }
        catch (err) { console.log(err.message); }
      `;
      const run = () =>
        execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
          cwd: ROOT,
          encoding: "utf8",
          timeout: 30_000,
        });
      assert.match(run(), new RegExp(`in use by process ${process.pid}`));
      await first.close();
      assert.equal(fs.existsSync(path.join(dataDir, "herald.pid")), false);
      const again = new SqliteStore({ dataDir, durability: "full" });
      assert.equal(await again.head("room:o"), 1, "nothing was lost by the refused opens");
      await again.close();
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it("takes over a directory whose owner is gone (SIGKILL leaves its file)", async () => {
    const dataDir = tempDir();
    try {
      // A pid that no process has: the highest a Linux pid can be, plus one.
      fs.writeFileSync(path.join(dataDir, "herald.pid"), "4194305\n");
      const store = new SqliteStore({ dataDir, durability: "full" });
      assert.equal(fs.readFileSync(path.join(dataDir, "herald.pid"), "utf8"), `${process.pid}\n`);
      await store.close();
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe("sqlite store - its checkpoint worker gone", () => {
  it("checkpoints on the writer instead: every write finishes and the WAL stays bounded", async () => {
    const dataDir = tempDir();
    const errors: string[] = [];
    const store = new SqliteStore({ dataDir, durability: "normal", onError: (m) => errors.push(m) });
    try {
      // Fault injection: the worker thread ends as a crash would end it.
      const worker = (store as unknown as { checkpointer: { worker: { terminate(): Promise<number> } } }).checkpointer
        .worker;
      await worker.terminate();
      const json = JSON.stringify("x".repeat(100_000));
      let largest = 0;
      for (let batch = 0; batch < 16; batch++) {
        const done = await Promise.all(
          Array.from({ length: 50 }, (_, i) =>
            store.append({ id: `d${batch}x${i}`, topic: "room:d", from: "u", payload: null, json }),
          ),
        );
        assert.equal(done.length, 50);
        largest = Math.max(largest, fs.statSync(path.join(dataDir, "herald.db-wal")).size);
      }
      assert.equal(await store.head("room:d"), 800);
      assert.ok(largest <= WAL_LIMIT + 6 * 2 ** 20, `the WAL reached ${largest} bytes`);
    } finally {
      await store.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe("sqlite store - a database of the first layout", () => {
  it("is migrated in place: messages kept, ids of removed messages still deduplicated", async () => {
    const dataDir = tempDir();
    // Schema version 0, as Herald 0.1 wrote it: publish ids in their own table. Seqs 1-2 of
    // room:m were removed by count (their ids remain), 3-4 are kept.
    const v0 = new Database(path.join(dataDir, "herald.db"));
    v0.pragma("journal_mode = WAL");
    v0.exec(`
      CREATE TABLE topics (name TEXT PRIMARY KEY, head INTEGER NOT NULL, last_ts INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TABLE messages (topic TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL, from_user TEXT NOT NULL,
        ts INTEGER NOT NULL, key TEXT, payload TEXT NOT NULL, PRIMARY KEY (topic, seq)) WITHOUT ROWID;
      CREATE TABLE published (from_user TEXT NOT NULL, id TEXT NOT NULL, topic TEXT NOT NULL, seq INTEGER NOT NULL,
        ts INTEGER NOT NULL);
      CREATE UNIQUE INDEX published_by_id ON published (from_user, id);
      CREATE TABLE clients (user TEXT NOT NULL, client_id TEXT NOT NULL, last_seen INTEGER NOT NULL,
        PRIMARY KEY (user, client_id)) WITHOUT ROWID;
      CREATE TABLE subscriptions (user TEXT NOT NULL, client_id TEXT NOT NULL, topic TEXT NOT NULL,
        acked INTEGER NOT NULL, PRIMARY KEY (user, client_id, topic)) WITHOUT ROWID;
      INSERT INTO topics VALUES ('room:m', 4, 1004);
      INSERT INTO messages VALUES ('room:m', 3, 'm3', 'alice', 1003, 'k', '"three"'), ('room:m', 4, 'm4', 'bob', 1004, NULL, '"four"');
      INSERT INTO published VALUES ('alice', 'm1', 'room:m', 1, 1001), ('alice', 'm2', 'room:m', 2, 1002),
        ('alice', 'm3', 'room:m', 3, 1003), ('bob', 'm4', 'room:m', 4, 1004);
      INSERT INTO subscriptions VALUES ('carol', 'c1', 'room:m', 3);
    `);
    v0.close();
    const store = new SqliteStore({ dataDir, durability: "full", now: () => 2_000 });
    try {
      assert.deepEqual((await store.read("room:m", 0, 10)).messages, [
        { id: "m3", topic: "room:m", seq: 3, from: "alice", ts: 1003, key: "k", payload: "three" },
        { id: "m4", topic: "room:m", seq: 4, from: "bob", ts: 1004, payload: "four" },
      ]);
      assert.deepEqual(await store.history("room:m", { before: 3, limit: 10 }), []);
      const removed = await store.append({ id: "m1", topic: "room:m", from: "alice", payload: 1, json: "1" });
      assert.deepEqual([removed.duplicate, removed.message.seq, removed.message.ts], [true, 1, 1001]);
      const kept = await store.append({ id: "m4", topic: "room:m", from: "bob", payload: 1, json: "1" });
      assert.deepEqual([kept.duplicate, kept.message.seq, kept.message.payload], [true, 4, "four"]);
      const fresh = await store.append({ id: "m5", topic: "room:m", from: "alice", payload: 5, json: "5" });
      assert.deepEqual([fresh.duplicate, fresh.message.seq], [false, 5]);
      assert.deepEqual(await store.subscriptions({ user: "carol", clientId: "c1" }), [{ topic: "room:m", acked: 3 }]);
    } finally {
      await store.close();
    }
    const db = new Database(path.join(dataDir, "herald.db"), { readonly: true });
    try {
      assert.equal(db.pragma("user_version", { simple: true }), 2);
      const row = db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'published'").get() as { n: number };
      assert.equal(row.n, 0);
    } finally {
      db.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it("refuses a database written by a newer Herald", () => {
    const dataDir = tempDir();
    const db = new Database(path.join(dataDir, "herald.db"));
    db.pragma("user_version = 99");
    db.close();
    try {
      assert.throws(() => new SqliteStore({ dataDir, durability: "full" }), /newer Herald \(schema 99/);
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe("sqlite store - a database of the second layout (before groups)", () => {
  it("is migrated in place: the dedup index leaves dead-letter topics out, groups have their tables", async () => {
    const dataDir = tempDir();
    const v1 = new Database(path.join(dataDir, "herald.db"));
    v1.pragma("journal_mode = WAL");
    v1.exec(`
      CREATE TABLE topics (name TEXT PRIMARY KEY, head INTEGER NOT NULL, last_ts INTEGER NOT NULL,
        floor INTEGER NOT NULL DEFAULT 1) WITHOUT ROWID;
      CREATE TABLE messages (topic TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL, from_user TEXT NOT NULL,
        ts INTEGER NOT NULL, key TEXT, payload TEXT, PRIMARY KEY (topic, seq)) WITHOUT ROWID;
      CREATE UNIQUE INDEX messages_by_id ON messages (from_user, id);
      CREATE TABLE clients (user TEXT NOT NULL, client_id TEXT NOT NULL, last_seen INTEGER NOT NULL,
        PRIMARY KEY (user, client_id)) WITHOUT ROWID;
      CREATE TABLE subscriptions (user TEXT NOT NULL, client_id TEXT NOT NULL, topic TEXT NOT NULL,
        acked INTEGER NOT NULL, PRIMARY KEY (user, client_id, topic)) WITHOUT ROWID;
      INSERT INTO topics VALUES ('room:m', 1, 1001, 1);
      INSERT INTO messages VALUES ('room:m', 1, 'm1', 'alice', 1001, NULL, '"one"');
      PRAGMA user_version = 1;
    `);
    v1.close();
    const store = new SqliteStore({ dataDir, durability: "full", now: () => 2_000 });
    try {
      const dup = await store.append({ id: "m1", topic: "room:m", from: "alice", payload: 1, json: "1" });
      assert.deepEqual([dup.duplicate, dup.message.seq], [true, 1]);
      await store.joinGroup({ user: "w", clientId: "w1" }, "room:m", "g", 1);
      const progress = () => ({ acked: 1, done: [], attempts: [], retried: [], delivered: 0 });
      const dead = await store.deadLetter(
        { id: "m1", topic: "dead:room:m:g", from: "alice", payload: "one", json: '"one"' },
        { topic: "room:m", group: "g", progress },
      );
      assert.deepEqual([dead.topic, dead.seq, dead.id], ["dead:room:m:g", 1, "m1"]);
    } finally {
      await store.close();
    }
    const db = new Database(path.join(dataDir, "herald.db"), { readonly: true });
    try {
      assert.equal(db.pragma("user_version", { simple: true }), 2);
    } finally {
      db.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
