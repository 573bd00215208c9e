/**
 * The SQLite store's file: its layout (SCHEMA), the migrations from earlier layouts, and how it is
 * opened (WAL, and the pragmas sqlite-store.ts's header explains). sqlite-store.ts holds the writes
 * and reads on it.
 */
import Database from "better-sqlite3";

/** `PRAGMA user_version` of SCHEMA; `migrate` brings the earlier layouts (0, 1) up to date. */
const SCHEMA_VERSION = 2;

/**
 * Dead letters keep their message's id and publisher (PROTOCOL.md "Groups"), and one message may
 * die more than once, so ids in `dead:` topics are outside the dedup index. The same condition
 * is on every statement that uses the index.
 */
export const DEDUPED = "substr(topic, 1, 5) <> 'dead:'";

/**
 * The unique index on (from_user, id) is the dedup per publisher: PROTOCOL.md keeps a publish id
 * for HERALD_RETENTION_MS after acceptance. Retention by count may remove a message before that,
 * so it leaves the row as a tombstone (payload NULL) until it ages out. Retention removes a prefix
 * of each log, so the tombstones are the rows below the topic's `floor`, and readers start there
 * instead of stepping over them. One table for both costs a row and an index entry per publish; a
 * separate id table cost a third b-tree insert and a page more in every small commit's WAL.
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS topics (
  name TEXT PRIMARY KEY, head INTEGER NOT NULL, last_ts INTEGER NOT NULL, floor INTEGER NOT NULL DEFAULT 1
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS messages (
  topic TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL, from_user TEXT NOT NULL,
  ts INTEGER NOT NULL, key TEXT, payload TEXT, PRIMARY KEY (topic, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS messages_by_id ON messages (from_user, id) WHERE ${DEDUPED};
CREATE TABLE IF NOT EXISTS clients (
  user TEXT NOT NULL, client_id TEXT NOT NULL, last_seen INTEGER NOT NULL, PRIMARY KEY (user, client_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS subscriptions (
  user TEXT NOT NULL, client_id TEXT NOT NULL, topic TEXT NOT NULL, acked INTEGER NOT NULL,
  PRIMARY KEY (user, client_id, topic)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS groups (
  topic TEXT NOT NULL, name TEXT NOT NULL, acked INTEGER NOT NULL, progress TEXT NOT NULL,
  PRIMARY KEY (topic, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS group_members (
  user TEXT NOT NULL, client_id TEXT NOT NULL, topic TEXT NOT NULL, name TEXT NOT NULL,
  PRIMARY KEY (user, client_id, topic, name)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS group_members_by_group ON group_members (topic, name);
CREATE TABLE IF NOT EXISTS txns (
  from_user TEXT NOT NULL, id TEXT NOT NULL, client_id TEXT NOT NULL, topic TEXT NOT NULL, key TEXT,
  payload TEXT, prepared_at INTEGER NOT NULL, checks INTEGER NOT NULL DEFAULT 0,
  committed_seq INTEGER, committed_at INTEGER, PRIMARY KEY (from_user, id)
) WITHOUT ROWID;
`;

/** Opens the store's file with the settings the header explains, its schema brought up to date. */
export function openDatabase(file: string, walLimit: number): Database.Database {
  const db = new Database(file);
  db.pragma("journal_mode = WAL");
  // See the header: `full` adds an fdatasync of the WAL off the event loop.
  db.pragma("synchronous = NORMAL");
  db.pragma("busy_timeout = 5000");
  // Checkpoints run in a worker thread (checkpointer.ts), never inside a commit on the event loop.
  db.pragma("wal_autocheckpoint = 0");
  // When the WAL starts over, SQLite cuts the file back to this size. Cut back to a quarter, it
  // grew again on every cycle under load, and each truncation and each new block of the file
  // went through the file system's journal on the event loop (ftruncate and pwrite of 2-5 ms):
  // W4's p99 was 6.5-8.1 ms against 4.3-4.9 with the file kept at its bound and written over.
  db.pragma(`journal_size_limit = ${walLimit}`);
  try {
    migrate(db);
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}

/**
 * Brings a database of an earlier layout up to SCHEMA, in one transaction. Version 1 had no groups,
 * and its dedup index also covered ids in `dead:` topics (it had none). Version 0 kept publish
 * ids in a `published` table beside `messages`, whose payload could not be NULL. Its ids whose
 * message retention removed become tombstones, below a floor at each topic's oldest message; the
 * rest of each row was already in `messages`.
 */
function migrate(db: Database.Database): void {
  const version = db.pragma("user_version", { simple: true }) as number;
  if (version > SCHEMA_VERSION) {
    throw new Error(`the database was written by a newer Herald (schema ${version}; this one knows ${SCHEMA_VERSION})`);
  }
  const hasPublished = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'published'").get();
  db.transaction(() => {
    if (version === 0 && hasPublished) {
      db.exec(`
        ALTER TABLE messages RENAME TO messages_v0;
        ALTER TABLE topics ADD COLUMN floor INTEGER NOT NULL DEFAULT 1;
        UPDATE topics SET floor = coalesce((SELECT min(seq) FROM messages_v0 WHERE topic = name), head + 1);
        ${SCHEMA}
        INSERT INTO messages SELECT topic, seq, id, from_user, ts, key, payload FROM messages_v0;
        INSERT INTO messages (topic, seq, id, from_user, ts, key, payload)
          SELECT p.topic, p.seq, p.id, p.from_user, p.ts, NULL, NULL FROM published p
          WHERE NOT EXISTS (SELECT 1 FROM messages_v0 m WHERE m.topic = p.topic AND m.seq = p.seq);
        DROP TABLE messages_v0;
        DROP TABLE published;
      `);
    } else {
      if (version === 1) db.exec("DROP INDEX messages_by_id");
      db.exec(SCHEMA);
    }
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  })();
}
