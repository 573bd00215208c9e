/**
 * The minimal SQLite server of issue 5: socket.io + better-sqlite3 in WAL mode with
 * synchronous=FULL, one transaction per event-loop turn holding every publish and ack of the
 * turn, each publish answered after its COMMIT (so after the fsync, which blocks the event loop),
 * and each turn's messages fanned out per topic as one `messages` array. No dedup, no flow
 * control, no validation: the floor a real hub has to beat.
 */
import path from "node:path";
import Database from "better-sqlite3";
import { type Stored, startStoringPeer } from "./sio-common.js";

const db = new Database(path.join(process.env.DATA_DIR ?? ".", "min.db"));
db.pragma("journal_mode = WAL");
db.pragma("synchronous = FULL");
db.exec(`
  CREATE TABLE IF NOT EXISTS messages (topic TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL,
    from_user TEXT NOT NULL, ts INTEGER NOT NULL, payload TEXT NOT NULL, PRIMARY KEY (topic, seq)) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS cursors (client TEXT NOT NULL, topic TEXT NOT NULL, acked INTEGER NOT NULL,
    PRIMARY KEY (client, topic)) WITHOUT ROWID;`);
const insert = db.prepare("INSERT INTO messages (topic, seq, id, from_user, ts, payload) VALUES (?, ?, ?, ?, ?, ?)");
const cursor = db.prepare(
  "INSERT INTO cursors (client, topic, acked) VALUES (?, ?, ?) ON CONFLICT (client, topic) DO UPDATE SET acked = max(acked, excluded.acked)",
);

const commit = db.transaction(({ publishes, acks }: Stored) => {
  for (const { m } of publishes) insert.run(m.topic, m.seq, m.id, m.from, m.ts, JSON.stringify(m.payload));
  for (const a of acks) cursor.run(a.client, a.topic, a.seq);
});

startStoringPeer("minimal sqlite", commit, () => db.close());
