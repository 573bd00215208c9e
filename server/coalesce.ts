/**
 * One write per connection per flush. engine.io hands a connection's queued packets (a turn's
 * replies, say) to the WebSocket transport in one `send`, but `ws` writes each frame with its own
 * syscall; corking the TCP socket around that `send` makes them one writev. This was the largest
 * single cost in the publish profile. The TCP socket is reached through `ws`' `_socket`, which has
 * been its name for years; where it is absent (long-polling) nothing changes.
 */
import type net from "node:net";
import type { Server } from "socket.io";

interface EngineConnection {
  transport: { name: string; socket?: { _socket?: net.Socket } };
  on(event: "flush", listener: (packets: unknown[]) => void): void;
  on(event: "drain", listener: () => void): void;
}

export function coalesceWrites(io: Server): void {
  io.engine.on("connection", (conn: EngineConnection) => {
    let corked: net.Socket | undefined;
    conn.on("flush", (packets) => {
      // A lone packet is one write anyway.
      if (packets.length < 2 || conn.transport.name !== "websocket") return;
      corked = conn.transport.socket?._socket;
      corked?.cork();
    });
    conn.on("drain", () => {
      corked?.uncork();
      corked = undefined;
    });
  });
}
