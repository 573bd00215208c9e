/**
 * W1's storage limit: a bare better-sqlite3 group-commit insert loop of the row Herald writes for
 * a publish (the message, in a table with Herald's unique index on publisher and id, a UUIDv7 as
 * the SDK makes), `batch` rows per transaction, WAL with synchronous=FULL (fsync on every commit).
 * No network, no protocol: what the disk and SQLite allow on this machine. Runs as a load role inside a bench/load/agent.ts process.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { randomId } from "../../shared/client/index.js";
import { jsonPayload, type Role } from "../load/role.js";

export class SqliteLoop implements Role {
  private db: Database.Database | undefined;
  private dir = "";
  private rows = 0;
  private stopped = false;

  constructor(private readonly o: { batch: number; limit?: number }) {}

  async setup() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), "herald-bench-loop-"));
    const db = new Database(path.join(this.dir, "loop.db"));
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = FULL");
    db.exec(`
      CREATE TABLE messages (topic TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL, from_user TEXT NOT NULL,
        ts INTEGER NOT NULL, key TEXT, payload TEXT, PRIMARY KEY (topic, seq)) WITHOUT ROWID;
      CREATE UNIQUE INDEX messages_by_id ON messages (from_user, id);`);
    this.db = db;
    return {};
  }

  go() {
    const db = this.db!;
    const insertMessage = db.prepare(
      "INSERT INTO messages (topic, seq, id, from_user, ts, key, payload) VALUES (?, ?, ?, ?, ?, ?, ?)",
    );
    const payload = JSON.stringify(jsonPayload());
    const batch = db.transaction((n: number) => {
      const ts = Date.now();
      for (let i = 0; i < n; i++) {
        const seq = ++this.rows;
        insertMessage.run("room:bench", seq, randomId(), "bench", ts, null, payload);
      }
    });
    const limit = this.o.limit ?? Number.POSITIVE_INFINITY;
    const turn = () => {
      if (this.stopped || this.rows >= limit) return;
      batch(this.o.batch);
      setImmediate(turn);
    };
    setImmediate(turn);
  }

  count() {
    return this.rows;
  }

  async stop() {
    this.stopped = true;
    this.db?.close();
    fs.rmSync(this.dir, { recursive: true, force: true });
    return { rows: this.rows };
  }
}
