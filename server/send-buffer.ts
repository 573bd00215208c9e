/**
 * What waits to be sent to one connection (PROTOCOL.md "Transport": HERALD_MAX_BUFFERED). A client
 * that stops reading while it keeps sending would otherwise make the server queue every reply and
 * delivery for it in memory, without end: 1000 `history` calls of 60 bytes each queue hundreds of
 * megabytes of pages. The hub holds such a connection's events back (hub.ts `receive`) and the
 * signals meant for it are dropped (signal.ts) while `full`.
 *
 * Two places hold bytes: engine.io's write buffer, packets waiting until the transport can take them
 * (a WebSocket whose last write has not reached the kernel, or a long-polling client that has not
 * polled), and, for a WebSocket, `ws` and the TCP socket (`bufferedAmount`). The first is counted as
 * packets are created and reset when engine.io hands them all to the transport, so that measuring
 * costs O(1) however much is queued. Text is counted in UTF-16 code units, which is the byte count
 * for the ASCII of socket.io's framing and JSON and within 3x of it otherwise: a bound, not an
 * account.
 */

/** The parts of engine.io's Socket this reads; they have been stable across engine.io 4 to 6. */
export interface EngineConnection {
  transport: {
    name: string;
    socket?: { bufferedAmount?: number; pause?(): void; resume?(): void; terminate?(): void };
  };
  on(event: "packetCreate", listener: (packet: { data?: unknown }) => void): void;
  on(event: "flush", listener: () => void): void;
}

export class SendBuffer {
  /** Bytes created since engine.io last handed its write buffer to the transport. */
  private queued = 0;

  constructor(
    private readonly conn: EngineConnection,
    private readonly limit: number,
  ) {
    conn.on("packetCreate", (packet) => {
      const { data } = packet;
      if (typeof data === "string") this.queued += data.length;
      else if (data instanceof Uint8Array) this.queued += data.byteLength;
    });
    conn.on("flush", () => {
      this.queued = 0;
    });
  }

  get bytes(): number {
    const socket = this.conn.transport.socket;
    return this.queued + (this.conn.transport.name === "websocket" ? (socket?.bufferedAmount ?? 0) : 0);
  }

  /** More than HERALD_MAX_BUFFERED waits for this connection. */
  get full(): boolean {
    return this.bytes > this.limit;
  }

  /**
   * Stops reading from a WebSocket, so that a client that sends while it does not read meets TCP's
   * own back-pressure instead of filling the server's list of held events. Long-polling has no
   * such handle; there the list's bound (hub.ts) applies.
   */
  pauseReading(): void {
    if (this.conn.transport.name === "websocket") this.conn.transport.socket?.pause?.();
  }

  /** Drops the connection at once, without a closing handshake (see hub.ts waitForDrain). */
  terminate(): void {
    if (this.conn.transport.name === "websocket") this.conn.transport.socket?.terminate?.();
  }

  resumeReading(): void {
    if (this.conn.transport.name === "websocket") this.conn.transport.socket?.resume?.();
  }
}

/**
 * What drops every WebSocket connection open now, at once and without a closing handshake
 * (herald.ts close). engine.io keeps its connections in `clients`, protected in its types, stable
 * from 4 to 6.
 */
export function terminator(io: { engine: object }): () => void {
  const { clients } = io.engine as { clients?: Record<string, EngineConnection> };
  const sockets = Object.values(clients ?? {}).flatMap((c) =>
    c.transport.name === "websocket" ? [c.transport.socket] : [],
  );
  return () => {
    for (const socket of sockets) socket?.terminate?.();
  };
}
