/**
 * What the socket.io peers share: an http + socket.io server on a free loopback port (also W9's
 * relay) that, for the two publish peers, answers the subset of Herald's protocol the bench uses,
 * and fans each event-loop turn's messages out per topic as one `messages` array (encoded once by
 * socket.io's broadcast).
 */
import http from "node:http";
import { Server, type ServerOptions, type Socket } from "socket.io";
import type { Message } from "../../shared/protocol.js";

/** Herald's message, less the optional fields the bench does not use. */
export type PeerMessage = Omit<Message, "key" | "group" | "attempt">;

export type Reply = (r: object) => void;

export interface PeerHandlers {
  publish(socket: Socket, args: { id: string; topic: string; payload: unknown }, cb: Reply | undefined): void;
  subscribe(socket: Socket, args: { topic: string }, cb: Reply | undefined): void;
  ack(socket: Socket, args: { topic: string; seq: number }, cb: Reply | undefined): void;
}

/**
 * A socket.io server on a free loopback port that prints `listening on <url>` for the bench and
 * exits on SIGTERM; what it answers is the caller's.
 */
export function listenPeer(name: string, onClose: () => void = () => {}, options: Partial<ServerOptions> = {}): Server {
  const server = http.createServer();
  const io = new Server(server, { serveClient: false, maxHttpBufferSize: 2 * 65536 + 65536, ...options });
  server.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
    const address = server.address();
    const port = typeof address === "object" && address ? address.port : 0;
    console.log(`${name}: listening on http://127.0.0.1:${port}`);
  });
  const stop = () => {
    io.close();
    onClose();
    process.exit(0);
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
  return io;
}

export function startPeerServer(
  name: string,
  handlers: PeerHandlers,
  onClose: () => void = () => {},
  options: Partial<ServerOptions> = {},
) {
  const io = listenPeer(name, onClose, options);
  const heads = new Map<string, number>();
  io.on("connection", (socket) => {
    socket.on("publish", (args, cb) => handlers.publish(socket, args, typeof cb === "function" ? cb : undefined));
    socket.on("subscribe", (args, cb) => {
      void socket.join(args.topic);
      handlers.subscribe(socket, args, typeof cb === "function" ? cb : undefined);
    });
    socket.on("ack", (args, cb) => handlers.ack(socket, args, typeof cb === "function" ? cb : undefined));
    socket.on("history", (args: { topic: string }, cb) => {
      if (typeof cb === "function") cb({ ok: true, messages: [], head: heads.get(args.topic) ?? 0 });
    });
  });

  /** Messages of this turn per topic; flushed once per turn. */
  let pending = new Map<string, PeerMessage[]>();
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    const out = pending;
    pending = new Map();
    for (const [topic, batch] of out) {
      // With a cluster adapter the room's members may all be on other nodes.
      const room = io.sockets.adapter.rooms.get(topic);
      if (options.adapter || (room && room.size > 0)) io.to(topic).emit("messages", batch);
    }
  };
  const fanOut = (m: PeerMessage) => {
    let batch = pending.get(m.topic);
    if (!batch) {
      batch = [];
      pending.set(m.topic, batch);
    }
    batch.push(m);
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };
  /** A published message with the topic's next seq, as both peers store and fan it out. */
  const accept = (args: { id: string; topic: string; payload: unknown }): PeerMessage => {
    const seq = (heads.get(args.topic) ?? 0) + 1;
    heads.set(args.topic, seq);
    return { id: args.id, topic: args.topic, seq, from: "bench", ts: Date.now(), payload: args.payload };
  };

  return { io, heads, fanOut, accept };
}

/** The raw socket.io peer's answers (raw-sio.ts, sio-redis.ts): at once, nothing stored. */
export function startRawPeer(name: string, onClose: () => void = () => {}, options: Partial<ServerOptions> = {}) {
  const peer = startPeerServer(
    name,
    {
      publish(_socket, args, cb) {
        const m = peer.accept(args);
        cb?.({ ok: true, seq: m.seq, ts: m.ts, duplicate: false });
        peer.fanOut(m);
      },
      subscribe(_socket, args, cb) {
        const head = peer.heads.get(args.topic) ?? 0;
        cb?.({ ok: true, head, acked: head });
      },
      ack(_socket, _args, cb) {
        cb?.({ ok: true });
      },
    },
    onClose,
    options,
  );
  return peer;
}

export interface Stored {
  publishes: { m: PeerMessage; cb: Reply | undefined }[];
  /** One per cursor write: a subscribe at the head, or an ack. */
  acks: { client: string; topic: string; seq: number; cb: Reply | undefined }[];
}

/**
 * The minimal storing peers (sqlite-min.ts, pg-min.ts): every publish and ack waits for the next
 * `commit`, which takes all that came since the last one began (one at a time: what comes while
 * one runs goes into the next); then the publishes and acks are answered and the publishes fanned
 * out per topic.
 */
export function startStoringPeer(
  name: string,
  commit: (batch: Stored) => void | Promise<void>,
  onClose: () => void = () => {},
) {
  let waiting: Stored = { publishes: [], acks: [] };
  let scheduled = false;
  let committing = false;
  const turn = () => {
    scheduled = false;
    if (committing || (waiting.publishes.length === 0 && waiting.acks.length === 0)) return;
    const batch = waiting;
    waiting = { publishes: [], acks: [] };
    committing = true;
    Promise.resolve(commit(batch)).then(
      () => {
        committing = false;
        // Acked after the commit, then fanned out.
        for (const { m, cb } of batch.publishes) cb?.({ ok: true, seq: m.seq, ts: m.ts, duplicate: false });
        for (const a of batch.acks) a.cb?.({ ok: true });
        for (const { m } of batch.publishes) peer.fanOut(m);
        schedule();
      },
      (err: unknown) => {
        console.error(err);
        process.exit(1);
      },
    );
  };
  const schedule = () => {
    if (!scheduled) {
      scheduled = true;
      setImmediate(turn);
    }
  };
  const clientOf = (socket: Socket) => String((socket.handshake.auth as { clientId?: string }).clientId ?? socket.id);
  const peer = startPeerServer(
    name,
    {
      publish(_socket, args, cb) {
        waiting.publishes.push({ m: peer.accept(args), cb });
        schedule();
      },
      subscribe(socket, args, cb) {
        const head = peer.heads.get(args.topic) ?? 0;
        waiting.acks.push({ client: clientOf(socket), topic: args.topic, seq: head, cb: undefined });
        schedule();
        cb?.({ ok: true, head, acked: head });
      },
      ack(socket, args, cb) {
        waiting.acks.push({ client: clientOf(socket), topic: args.topic, seq: args.seq, cb });
        schedule();
      },
    },
    onClose,
  );
  return peer;
}
