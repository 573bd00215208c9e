/**
 * W9's floor for `request`: a plain socket.io server that forwards a caller's `request` to the
 * newest connection of user `to` with an acknowledgement callback and relays the answer, in
 * Herald's reply shape so that the same load drives both. Nothing else: no validation, no rate
 * token, no timer (the caller's wait is bounded by the load), no error for a responder that
 * leaves (its requests are never answered).
 */
import type { Socket } from "socket.io";
import { listenPeer } from "./sio-common.js";

const io = listenPeer("socket.io relay");
const newest = new Map<string, Socket>();

io.on("connection", (socket) => {
  const user = String(socket.handshake.auth.user);
  newest.set(user, socket);
  socket.on("disconnect", () => {
    if (newest.get(user) === socket) newest.delete(user);
  });
  socket.on("request", (args: { to: string; method: string; params?: unknown }, cb: (r: object) => void) => {
    const target = newest.get(args.to);
    if (!target || target === socket) {
      cb({ ok: false, error: { code: "UNAVAILABLE", message: `${args.to} has no connection` } });
      return;
    }
    target.emit("request", { from: user, method: args.method, params: args.params }, (answer: { result?: unknown }) =>
      cb({ ok: true, result: answer.result }),
    );
  });
});
