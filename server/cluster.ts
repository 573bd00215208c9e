/**
 * What the nodes of a cluster tell each other about live connections (PROTOCOL.md "Running"),
 * over peers.ts: presence, `signal`, the REPLACED hand-over of a client that connects to another
 * node, and `request`s routed to a user's connection on another node. None of it is durable: a
 * node that goes down takes its users' presence with it, and a request waiting on it is
 * UNAVAILABLE. Durable state is the store's, and new messages travel by the fan-out
 * (redis-fanout.ts).
 *
 * The hand-over: a node that accepts a (user, clientId) asks every other node to let go of it
 * first. The node that held it stops delivering, sends REPLACED, disconnects it, writes the acks
 * it had kept in memory, and only then answers, so the new node resumes after every ack the old
 * one received. Its presence moves to the new node without an event: the old node says "gone, to
 * N" and everyone counts N as holding the user until N has resumed and says which topics it did
 * not join again.
 */
import { HeraldError } from "../shared/errors.js";
import type { RequestEvent, SignalEvent, TxnCheckEvent } from "../shared/protocol.js";
import type { Logger } from "./log.js";
import type { Peers } from "./peers.js";
import type { Presence } from "./presence.js";
import type { Requests } from "./requests.js";
import type { Session } from "./session.js";
import type { Transactions } from "./transactions.js";

/** How long a new connection waits for the other nodes to let go of its client. */
const CLAIM_MS = 3000;

export interface ClusterParts {
  peers: Peers;
  presence: Presence;
  requests: Requests;
  transactions: Transactions;
  log: Logger;
  /** This node's live session of the client, if any. */
  session(user: string, clientId: string): Session | undefined;
  /**
   * Lets go of a session as a local REPLACED does: no more deliveries, REPLACED, disconnected and
   * out of presence at once; resolves once the acks it received are written.
   */
  release(session: Session): Promise<void>;
  /** Sends a signal from another node to the topic's subscribers here (signal.ts). */
  signalHere(event: SignalEvent): void;
}

interface PresenceNote {
  t: string;
  u: string;
  on: boolean;
  /** Gone from here, held now by that node (a hand-over). */
  to?: string;
}

export class Cluster {
  private readonly peers: Peers;
  /** A hand-over under way on this node: the user whose leaves go out as "to `node`". */
  private handingOver: { user: string; node: string } | undefined;

  constructor(private readonly parts: ClusterParts) {
    const { peers, presence } = parts;
    this.peers = peers;
    presence.changed = (topic, user, online) => {
      const note: PresenceNote = { t: topic, u: user, on: online };
      if (!online && this.handingOver?.user === user) note.to = this.handingOver.node;
      peers.broadcast("presence", note);
    };
    peers.on("presence", (body, from) => this.presenceNote(body as PresenceNote, from));
    peers.on("snapshot", (body, from) => {
      for (const [topic, users] of Object.entries(body as Record<string, string[]>)) {
        for (const user of users) presence.remoteChange(from, topic, user, true);
      }
    });
    // A node that comes (or comes back) learns what this one holds; one that goes lets go of its.
    peers.onUp((node) => peers.send(node, "snapshot", presence.snapshot()));
    peers.onDown((node) => presence.nodeDown(node));
    peers.on("signal", (body) => parts.signalHere(body as SignalEvent));
    peers.on("claim", async (body, from) => {
      const { user, clientId } = body as { user: string; clientId: string };
      return { topics: await this.letGo(user, clientId, from) };
    });
    peers.on("txn-check", (body) => {
      const { user, clientId, event, timeoutMs } = body as {
        user: string;
        clientId: string;
        event: TxnCheckEvent;
        timeoutMs: number;
      };
      return parts.transactions.answerCheck(user, clientId, event, timeoutMs);
    });
    peers.on("request", (body) => {
      const { to, event, timeoutMs } = body as { to: string; event: RequestEvent; timeoutMs: number };
      return parts.requests.answer(to, event, timeoutMs);
    });
  }

  /** Sends a signal to the topic's subscribers on the other nodes. */
  signal(event: SignalEvent): void {
    this.peers.broadcast("signal", event);
  }

  /**
   * Before a new connection of the client resumes here: every other node lets go of the client and
   * writes its acks. Returns, per node that held it, the topics its presence was in.
   */
  async claim(user: string, clientId: string): Promise<Map<string, string[]>> {
    const held = new Map<string, string[]>();
    await Promise.all(
      this.peers.alive().map((node) =>
        this.peers.ask(node, "claim", { user, clientId }, CLAIM_MS).then(
          (answer) => {
            const topics = (answer as { topics: string[] }).topics;
            if (topics.length > 0) held.set(node, topics);
          },
          // A node that does not answer in time is down or cut off: its sessions are not served.
          (err: unknown) => this.parts.log.warn({ err, node }, "cluster: a node did not let go of a client in time"),
        ),
      ),
    );
    return held;
  }

  /**
   * The new session has resumed: the user's presence the old nodes handed over is now this node's
   * to say, and in the topics it did not join again the user is gone.
   */
  claimed(session: Session, held: Map<string, string[]>): void {
    const { presence } = this.parts;
    const mine = new Set(presence.held(session));
    for (const [node, topics] of held) {
      for (const topic of topics) {
        presence.remoteChange(node, topic, session.user, false);
        // The others counted this node as holding the user there since the hand-over.
        if (!mine.has(topic)) {
          this.peers.broadcast("presence", { t: topic, u: session.user, on: false } satisfies PresenceNote);
        }
      }
    }
  }

  /** This node's part of a claim from `node`: the session of the client, let go; its topics. */
  private async letGo(user: string, clientId: string, node: string): Promise<string[]> {
    const { presence } = this.parts;
    const session = this.parts.session(user, clientId);
    if (!session) return [];
    const topics = presence.held(session);
    // The new node counts as holding the user before the old session leaves, here and (with `to`)
    // everywhere else: no presence event for the hand-over.
    for (const topic of topics) presence.remoteChange(node, topic, user, true);
    this.handingOver = { user, node };
    const released = this.parts.release(session); // leaves presence before its first await
    this.handingOver = undefined;
    await released;
    return topics;
  }

  private presenceNote(note: PresenceNote, from: string): void {
    const { presence } = this.parts;
    if (note.to === this.peers.id) return; // ours now: claimed() settles it
    if (note.to !== undefined) presence.remoteChange(note.to, note.t, note.u, true);
    presence.remoteChange(from, note.t, note.u, note.on);
  }

  /** The node that runs the transactions' checks: the lowest id of those alive. */
  leader(): boolean {
    return this.peers.alive().every((node) => node > this.peers.id);
  }

  /** A `txn-check` for a producer with no connection here: to a node that has one. */
  async txnCheck(user: string, clientId: string, event: TxnCheckEvent, timeoutMs: number): Promise<unknown> {
    const node = this.parts.presence.nodesOf(user)[0];
    if (node === undefined) throw new HeraldError("UNAVAILABLE", `${user} has no live connection to ask`);
    return this.peers.ask(node, "txn-check", { user, clientId, event, timeoutMs }, timeoutMs + CLAIM_MS);
  }

  /** A request for a user with no connection here: to a node that has one. */
  async request(to: string, event: RequestEvent, timeoutMs: number): Promise<unknown> {
    const node = this.parts.presence.nodesOf(to)[0];
    if (node === undefined) throw new HeraldError("UNAVAILABLE", `${to} has no live connection to answer`);
    return this.peers.ask(node, "request", { to, event, timeoutMs }, timeoutMs + CLAIM_MS);
  }
}
