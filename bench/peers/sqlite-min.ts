/**
 * The minimal SQLite server of issue 5: socket.io + better-sqlite3 in WAL mode with
 * synchronous=FULL, one transaction per event-loop turn holding every publish and ack of the
 * turn, each publish answered after its COMMIT (so after the fsync, which blocks the event loop),
 * and each turn's messages fanned out per topic as one `messages` array. No dedup, no flow
 * control, no validation: the floor a real hub has to beat.
 */
import path from "node:path";
import Database from "better-sqlite3";
import type { Socket } from "socket.io";
import { type PeerMessage, type Reply, startPeerServer } from "./sio-common.js";

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

let publishes: { m: PeerMessage; cb: Reply | undefined }[] = [];
let acks: { client: string; topic: string; seq: number; cb: Reply | undefined }[] = [];
let scheduled = false;

const commit = db.transaction((ps: typeof publishes, as: typeof acks) => {
  for (const { m } of ps) insert.run(m.topic, m.seq, m.id, m.from, m.ts, JSON.stringify(m.payload));
  for (const a of as) cursor.run(a.client, a.topic, a.seq);
});

const turn = () => {
  scheduled = false;
  const ps = publishes;
  const as = acks;
  publishes = [];
  acks = [];
  commit(ps, as);
  // Acked after the commit, then fanned out.
  for (const { m, cb } of ps) cb?.({ ok: true, seq: m.seq, ts: m.ts, duplicate: false });
  for (const a of as) a.cb?.({ ok: true });
  for (const { m } of ps) peer.fanOut(m);
};
const schedule = () => {
  if (!scheduled) {
    scheduled = true;
    setImmediate(turn);
  }
};
const clientOf = (socket: Socket) => String((socket.handshake.auth as { clientId?: string }).clientId ?? socket.id);

const peer = startPeerServer(
  "minimal sqlite",
  {
    publish(_socket, args, cb) {
      const m = peer.accept(args);
      publishes.push({ m, cb });
      schedule();
    },
    subscribe(socket, args, cb) {
      const head = peer.heads.get(args.topic) ?? 0;
      acks.push({ client: clientOf(socket), topic: args.topic, seq: head, cb: undefined });
      schedule();
      cb?.({ ok: true, head, acked: head });
    },
    ack(socket, args, cb) {
      acks.push({ client: clientOf(socket), topic: args.topic, seq: args.seq, cb });
      schedule();
    },
  },
  () => db.close(),
);
