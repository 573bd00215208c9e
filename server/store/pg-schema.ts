/**
 * The PostgreSQL store's tables (in the connection's `search_path`, `public` unless the URL's
 * `options` say otherwise) and their versioned migrations, run at start by whichever node starts
 * first: the others wait on the same advisory lock and find nothing left to do. pg-store.ts holds
 * the writes and reads on them.
 *
 * The layout is the SQLite store's (sqlite-schema.ts explains the tombstones below a topic's
 * `floor` and the dedup index), with one change a shared database needs: `topics.head` is the
 * per-topic counter every node's publishing transaction increments and holds locked through its
 * commit, so that seqs are gapless and committed in seq order across nodes.
 */
import type pg from "pg";

/**
 * Dead letters keep their message's id and publisher, and one message may die more than once, so
 * ids in `dead:` topics are outside the dedup index; every statement that uses the index says so.
 */
export const DEDUPED = "left(topic, 5) <> 'dead:'";

/** Migration n (from 1) brings schema version n - 1 to n. Never edit one that has shipped: add one. */
const MIGRATIONS: string[] = [
  `
  CREATE TABLE topics (
    name text PRIMARY KEY, head bigint NOT NULL, last_ts bigint NOT NULL, floor bigint NOT NULL DEFAULT 1
  );
  CREATE TABLE messages (
    topic text NOT NULL, seq bigint NOT NULL, id text NOT NULL, from_user text NOT NULL,
    ts bigint NOT NULL, key text, payload text, PRIMARY KEY (topic, seq)
  );
  CREATE UNIQUE INDEX messages_by_id ON messages (from_user, id) WHERE ${DEDUPED};
  CREATE TABLE clients (
    user_id text NOT NULL, client_id text NOT NULL, last_seen bigint NOT NULL, PRIMARY KEY (user_id, client_id)
  );
  CREATE INDEX clients_by_last_seen ON clients (last_seen);
  CREATE TABLE subscriptions (
    user_id text NOT NULL, client_id text NOT NULL, topic text NOT NULL, acked bigint NOT NULL,
    PRIMARY KEY (user_id, client_id, topic)
  );
  CREATE INDEX subscriptions_by_topic ON subscriptions (topic);
  CREATE TABLE groups (
    topic text NOT NULL, name text NOT NULL, acked bigint NOT NULL, progress text NOT NULL,
    PRIMARY KEY (topic, name)
  );
  CREATE TABLE group_members (
    user_id text NOT NULL, client_id text NOT NULL, topic text NOT NULL, name text NOT NULL,
    PRIMARY KEY (user_id, client_id, topic, name)
  );
  CREATE INDEX group_members_by_group ON group_members (topic, name);
  CREATE TABLE txns (
    from_user text NOT NULL, id text NOT NULL, client_id text NOT NULL, topic text NOT NULL, key text,
    payload text, prepared_at bigint NOT NULL, checks integer NOT NULL DEFAULT 0,
    committed_seq bigint, committed_at bigint, PRIMARY KEY (from_user, id)
  );
  `,
];

/** Any constant: the advisory lock that makes one node at a time migrate. */
const MIGRATION_LOCK = 0x4865_7261; // "Hera"

/** Creates or migrates the tables, in one transaction; refuses a database of a newer Herald. */
export async function migrate(pool: pg.Pool): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    await client.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK]);
    await client.query("CREATE TABLE IF NOT EXISTS herald_schema (version integer NOT NULL)");
    const { rows } = await client.query<{ version: number }>("SELECT version FROM herald_schema");
    const version = rows[0]?.version ?? 0;
    if (version > MIGRATIONS.length) {
      throw new Error(
        `the database was written by a newer Herald (schema ${version}; this one knows ${MIGRATIONS.length})`,
      );
    }
    for (const sql of MIGRATIONS.slice(version)) await client.query(sql);
    if (rows.length === 0) await client.query("INSERT INTO herald_schema VALUES ($1)", [MIGRATIONS.length]);
    else await client.query("UPDATE herald_schema SET version = $1", [MIGRATIONS.length]);
    await client.query("COMMIT");
  } catch (err) {
    await client.query("ROLLBACK").catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}
