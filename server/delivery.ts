/**
 * Delivery: from the durable log to the subscribers' sockets (PROTOCOL.md "Delivery guarantees").
 *
 * Each stream has a window (`acked`, `sent`]. New durable messages arrive in batches from the
 * fan-out (fanout.ts); a stream that is caught up and has room takes them live, and every stream of
 * a topic that takes the same batch gets it in one `messages` emit, encoded once. A stream that is
 * behind (after a reconnect, a replay, or a full window) reads from the store from `sent` on, in
 * seq order and in batches the window allows, and sends a `gap` first where retention removed
 * messages it had not got. When it catches up it takes live batches again: the hand-over needs no
 * locking because a live batch is taken only by a stream whose `sent` is just below it.
 *
 * Next on the path: ack.ts (moves cursors and frees the window).
 */
import type { Message } from "../shared/protocol.js";
import type { Fanout } from "./fanout.js";
import type { Logger } from "./log.js";
import type { Metrics } from "./metrics.js";
import type { HeraldSocket, Session, Stream } from "./session.js";
import type { Store } from "./store/store.js";

export class Delivery {
  private readonly byTopic = new Map<string, Set<Stream>>();

  constructor(
    fanout: Fanout,
    private readonly store: Store,
    private readonly maxInflight: number,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {
    fanout.onMessages((batch, durableAt) => this.fanOut(batch, durableAt));
    fanout.onResync(() => this.resync());
  }

  /** Registers a subscription on a connection at its cursor, held until `start`. */
  attach(session: Session, topic: string, acked: number): Stream {
    const stream: Stream = { session, topic, acked, sent: acked, gaps: [], reading: false, held: true, closed: false };
    session.streams.set(topic, stream);
    let streams = this.byTopic.get(topic);
    if (!streams) {
      streams = new Set();
      this.byTopic.set(topic, streams);
    }
    streams.add(stream);
    return stream;
  }

  /** Stops delivering: nothing of the topic is sent on this connection after this. */
  detach(stream: Stream): void {
    stream.closed = true;
    if (stream.session.streams.get(stream.topic) === stream) stream.session.streams.delete(stream.topic);
    const streams = this.byTopic.get(stream.topic);
    if (streams?.delete(stream) && streams.size === 0) this.byTopic.delete(stream.topic);
  }

  /** Delivery begins: once the subscribe reply or the connection is out. */
  start(stream: Stream): void {
    stream.held = false;
    this.pump(stream);
  }

  /** PROTOCOL: `subscribe` with `from` drops the in-flight window and starts again at `from`; held until `start`. */
  rewind(stream: Stream, acked: number): void {
    stream.acked = acked;
    stream.sent = acked;
    stream.gaps = [];
    stream.held = true;
  }

  /** The live plain subscribers of a topic (for `signal`). */
  streams(topic: string): ReadonlySet<Stream> {
    return this.byTopic.get(topic) ?? new Set();
  }

  /** Unacked messages outstanding: the window less the gaps in it. */
  inflight(stream: Stream): number {
    let n = stream.sent - stream.acked;
    for (const g of stream.gaps) if (g.to > stream.acked) n -= g.to - Math.max(g.from - 1, stream.acked);
    return n;
  }

  /** Called by ack.ts once the cursor moved: forget passed gaps, refill the window. */
  acked(stream: Stream): void {
    if (stream.gaps.length > 0) stream.gaps = stream.gaps.filter((g) => g.to > stream.acked);
    this.pump(stream);
  }

  /** The fan-out may have lost a run: every stream behind its topic's head reads from the store. */
  private resync(): void {
    for (const [topic, streams] of this.byTopic) {
      this.store.head(topic).then(
        (head) => {
          for (const stream of streams) if (stream.sent < head) this.pump(stream);
        },
        (err: unknown) => this.log.error({ err, topic }, "delivery resync failed"),
      );
    }
  }

  /** A commit's new messages of one topic, in seq order (fanout.ts). */
  private fanOut(batch: Message[], durableAt: number): void {
    const streams = this.byTopic.get(batch[0]!.topic);
    if (!streams) return;
    const first = batch[0]!.seq;
    const last = batch[batch.length - 1]!.seq;
    const takers: HeraldSocket[] = [];
    for (const stream of streams) {
      if (stream.sent >= last || stream.held) continue;
      if (!stream.reading && stream.sent === first - 1 && this.inflight(stream) + batch.length <= this.maxInflight) {
        stream.sent = last;
        takers.push(stream.session.socket);
      } else {
        this.pump(stream);
      }
    }
    if (takers.length === 0) return;
    if (takers.length === 1) takers[0]!.emit("messages", batch);
    else takers[0]!.nsp.to(takers.map((s) => s.id)).local.emit("messages", batch);
    this.metrics.delivered("live", batch, takers.length, durableAt);
  }

  /** Reads a stream forward from `sent` while its window has room. One read at a time per stream. */
  pump(stream: Stream): void {
    if (stream.reading || stream.held || stream.closed) return;
    const room = this.maxInflight - this.inflight(stream);
    if (room <= 0) return;
    stream.reading = true;
    this.read(stream, room).then(
      (more) => {
        stream.reading = false;
        if (more) this.pump(stream);
      },
      (err: unknown) => {
        stream.reading = false;
        // The stream stays behind and is read again on the next ack, publish or reconnect.
        this.log.error({ err, topic: stream.topic }, "delivery read failed");
      },
    );
  }

  /** Sends one batch from the store; true when there may be more to send. */
  private async read(stream: Stream, room: number): Promise<boolean> {
    const from = stream.sent;
    const { messages: batch, head } = await this.store.read(stream.topic, from, room);
    // A replay (`subscribe` with `from`) or a detach may have happened while reading.
    if (stream.closed || stream.sent !== from) return !stream.closed;
    const socket = stream.session.socket;
    const firstSeq = batch.length > 0 ? batch[0]!.seq : head + 1;
    if (firstSeq > from + 1) {
      // PROTOCOL: Delivery 4, a gap goes before any later messages of its stream.
      const gap = { from: from + 1, to: firstSeq - 1 };
      stream.gaps.push(gap);
      stream.sent = gap.to;
      socket.emit("gap", { topic: stream.topic, ...gap });
    }
    if (batch.length === 0) return false;
    stream.sent = batch[batch.length - 1]!.seq;
    socket.emit("messages", batch);
    this.metrics.delivered("read", batch, 1);
    return stream.sent < head;
  }
}
