/**
 * Who is online where (PROTOCOL.md `presence`): per topic, the users with a live connection
 * subscribed to it. A `presence` event goes to the topic's other live subscribers when a user's
 * first subscribed connection comes or its last one goes; none for `broadcast`. The hand-over of a
 * REPLACED connection is silent because the new session joins before the old one leaves.
 *
 * In a cluster each node knows its own sessions and, from what the others say (cluster.ts), which
 * other nodes hold a user in a topic: a user is in a topic while any node holds it, and each node
 * tells its own subscribers when that changes. `changed` is how this node's own changes go out.
 */
import { BROADCAST } from "../shared/topics.js";
import type { Session } from "./session.js";

/** A change of this node's own holdings: a user's first session here in a topic, or its last one gone. */
export type PresenceChange = (topic: string, user: string, online: boolean) => void;

export class Presence {
  /** topic -> user -> that user's live sessions subscribed to the topic. */
  private readonly topics = new Map<string, Map<string, Set<Session>>>();
  /** Every live session, for `presence` of `broadcast`. */
  private readonly online = new Map<string, Set<Session>>();
  /**
   * The topics each session has joined, so that `disconnect` leaves them all: a REPLACED session's
   * deliveries stop at once, but it must stay in the topics until its successor has joined them.
   */
  private readonly joined = new Map<Session, Set<string>>();
  /** topic (BROADCAST for being online at all) -> user -> the other nodes that hold it. */
  private readonly remote = new Map<string, Map<string, Set<string>>>();
  /** Set by cluster.ts: this node's changes, for the other nodes. */
  changed: PresenceChange | undefined;

  connect(session: Session): void {
    this.local(BROADCAST, this.online, session.user, session, true);
  }

  /** Leaves every topic the session joined, then goes offline. */
  disconnect(session: Session): void {
    for (const topic of [...(this.joined.get(session) ?? [])]) this.leave(topic, session);
    this.local(BROADCAST, this.online, session.user, session, false);
  }

  join(topic: string, session: Session): void {
    if (topic === BROADCAST) return;
    let users = this.topics.get(topic);
    if (!users) {
      users = new Map();
      this.topics.set(topic, users);
    }
    let topics = this.joined.get(session);
    if (!topics) {
      topics = new Set();
      this.joined.set(session, topics);
    }
    topics.add(topic);
    this.local(topic, users, session.user, session, true);
  }

  leave(topic: string, session: Session): void {
    const topics = this.joined.get(session);
    if (topics?.delete(topic) && topics.size === 0) this.joined.delete(session);
    const users = this.topics.get(topic);
    if (!users) return;
    this.local(topic, users, session.user, session, false);
    if (users.size === 0) this.topics.delete(topic);
  }

  /** The topics a session has joined (and BROADCAST): what a hand-over to another node passes on. */
  held(session: Session): string[] {
    return [BROADCAST, ...(this.joined.get(session) ?? [])];
  }

  /**
   * The user's newest live connection, other than `except`: where `request` and `txn-check` go.
   * Sessions are kept in the order they connected; one still in its handshake has no `data` yet.
   */
  newest(user: string, except?: Session): Session | undefined {
    let newest: Session | undefined;
    for (const s of this.online.get(user) ?? []) if (s.live && s !== except && s.socket.data === s) newest = s;
    return newest;
  }

  /** Other nodes that hold a live connection of the user. */
  nodesOf(user: string): string[] {
    return [...(this.remote.get(BROADCAST)?.get(user) ?? [])];
  }

  users(topic: string): string[] {
    const users = new Set((topic === BROADCAST ? this.online : this.topics.get(topic))?.keys());
    for (const user of this.remote.get(topic)?.keys() ?? []) users.add(user);
    return [...users].sort();
  }

  /** Another node now holds (or no longer holds) the user in the topic. */
  remoteChange(node: string, topic: string, user: string, online: boolean): void {
    const before = this.has(topic, user);
    let users = this.remote.get(topic);
    if (online) {
      if (!users) {
        users = new Map();
        this.remote.set(topic, users);
      }
      let nodes = users.get(user);
      if (!nodes) {
        nodes = new Set();
        users.set(user, nodes);
      }
      nodes.add(node);
    } else {
      const nodes = users?.get(user);
      if (nodes?.delete(node) && nodes.size === 0) {
        users!.delete(user);
        if (users!.size === 0) this.remote.delete(topic);
      }
    }
    if (before !== this.has(topic, user)) this.announce(topic, user, !before);
  }

  /** A node went down: whatever it held is let go. */
  nodeDown(node: string): void {
    for (const [topic, users] of [...this.remote]) {
      for (const [user, nodes] of [...users]) if (nodes.has(node)) this.remoteChange(node, topic, user, false);
    }
  }

  /** This node's holdings, for a node that just came: topic -> users. */
  snapshot(): Record<string, string[]> {
    const out: Record<string, string[]> = { [BROADCAST]: [...this.online.keys()] };
    for (const [topic, users] of this.topics) out[topic] = [...users.keys()];
    return out;
  }

  private has(topic: string, user: string): boolean {
    const local = topic === BROADCAST ? this.online : this.topics.get(topic);
    return local?.has(user) === true || this.remote.get(topic)?.has(user) === true;
  }

  /** Adds or removes a session of ours; on the user's first or last one here, others hear of it. */
  private local(topic: string, users: Map<string, Set<Session>>, user: string, session: Session, add: boolean): void {
    const before = this.has(topic, user);
    const changed = add ? addTo(users, user, session) : removeFrom(users, user, session);
    if (!changed) return;
    this.changed?.(topic, user, add);
    if (before !== this.has(topic, user) && topic !== BROADCAST) this.announce(topic, user, add);
  }

  private announce(topic: string, user: string, online: boolean): void {
    if (topic === BROADCAST) return;
    for (const [other, sessions] of this.topics.get(topic) ?? []) {
      if (other === user) continue;
      for (const s of sessions) s.socket.emit("presence", { topic, user, online });
    }
  }
}

/** Adds; true when it is the key's first. */
function addTo(map: Map<string, Set<Session>>, key: string, session: Session): boolean {
  let set = map.get(key);
  if (!set) {
    set = new Set();
    map.set(key, set);
  }
  set.add(session);
  return set.size === 1;
}

/** Removes; true when it was the key's last. */
function removeFrom(map: Map<string, Set<Session>>, key: string, session: Session): boolean {
  const set = map.get(key);
  if (!set?.delete(session)) return false;
  if (set.size > 0) return false;
  map.delete(key);
  return true;
}
