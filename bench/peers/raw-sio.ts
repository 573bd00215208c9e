/**
 * The ceiling: a raw socket.io server with no storage. A publish is answered at once and the
 * turn's messages are broadcast as one `messages` array; acks are accepted and ignored.
 */
import { startPeerServer } from "./sio-common.js";

const peer = startPeerServer("raw socket.io", {
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
});
