/**
 * Who is online where (PROTOCOL.md `presence`): per topic, the users with a live connection
 * subscribed to it. A `presence` event goes to the topic's other live subscribers when a user's
 * first subscribed connection comes or its last one goes; none for `broadcast`. The hand-over of a
 * REPLACED connection is silent because the new session joins before the old one leaves.
 */
import { BROADCAST } from "../shared/topics.js";
import type { Session } from "./session.js";

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

  connect(session: Session): void {
    addTo(this.online, session.user, session);
  }

  /** Leaves every topic the session joined, then goes offline. */
  disconnect(session: Session): void {
    for (const topic of [...(this.joined.get(session) ?? [])]) this.leave(topic, session);
    removeFrom(this.online, session.user, session);
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
    if (addTo(users, session.user, session)) this.announce(topic, users, session.user, true);
  }

  leave(topic: string, session: Session): void {
    const topics = this.joined.get(session);
    if (topics?.delete(topic) && topics.size === 0) this.joined.delete(session);
    const users = this.topics.get(topic);
    if (!users) return;
    if (removeFrom(users, session.user, session)) this.announce(topic, users, session.user, false);
    if (users.size === 0) this.topics.delete(topic);
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

  users(topic: string): string[] {
    const users = topic === BROADCAST ? this.online : this.topics.get(topic);
    return users ? [...users.keys()].sort() : [];
  }

  private announce(topic: string, users: Map<string, Set<Session>>, user: string, online: boolean): void {
    for (const [other, sessions] of users) {
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
