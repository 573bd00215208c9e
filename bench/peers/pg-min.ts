/**
 * The minimal PostgreSQL writer of issue 17: socket.io + `pg`, the same group commit as Herald's
 * PostgreSQL store (what arrives while a transaction is under way goes into the next one, one at a
 * time, messages inserted with one `INSERT ... SELECT FROM unnest`, cursors upserted in the same
 * transaction, `synchronous_commit = on`), each publish answered after its COMMIT and each batch
 * fanned out per topic as one `messages` array. Seqs come from memory (one node), and there is
 * no dedup, no flow control and no validation: the limit a PostgreSQL hub has to come near.
 */
import pg from "pg";
import { type Stored, startStoringPeer } from "./sio-common.js";

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 2 });
await pool.query(`
  CREATE TABLE IF NOT EXISTS messages (topic text NOT NULL, seq bigint NOT NULL, id text NOT NULL,
    from_user text NOT NULL, ts bigint NOT NULL, payload text NOT NULL, PRIMARY KEY (topic, seq));
  CREATE TABLE IF NOT EXISTS cursors (client text NOT NULL, topic text NOT NULL, acked bigint NOT NULL,
    PRIMARY KEY (client, topic));`);

async function commit({ publishes: ps, acks: as }: Stored): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    if (ps.length > 0) {
      await client.query(
        "INSERT INTO messages SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::text[])",
        [
          ps.map((p) => p.m.topic),
          ps.map((p) => p.m.seq),
          ps.map((p) => p.m.id),
          ps.map((p) => p.m.from),
          ps.map((p) => p.m.ts),
          ps.map((p) => JSON.stringify(p.m.payload)),
        ],
      );
    }
    if (as.length > 0) {
      // One row per cursor: an upsert may not touch a row twice.
      const latest = new Map<string, { client: string; topic: string; seq: number }>();
      for (const a of as) {
        const k = `${a.client}\u0000${a.topic}`;
        const known = latest.get(k);
        if (!known || known.seq < a.seq) latest.set(k, a);
      }
      const rows = [...latest.values()];
      await client.query(
        `INSERT INTO cursors SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])
         ON CONFLICT (client, topic) DO UPDATE SET acked = GREATEST(cursors.acked, excluded.acked)`,
        [rows.map((r) => r.client), rows.map((r) => r.topic), rows.map((r) => r.seq)],
      );
    }
    await client.query("COMMIT");
  } finally {
    client.release();
  }
}

startStoringPeer("minimal pg", commit, () => void pool.end());
