/**
 * Topic names and who may do what with them (PROTOCOL.md "Topics").
 *
 * `room:<name>`, `user:<id>` (the inbox of one user), `broadcast`, and
 * `dead:<topic>:<group>` (the dead letters of a consumer group, split at the last `:`).
 */

/** User ids, room names and group names: case-sensitive, 1-64 chars. */
export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** Client ids and message ids. */
export const ID_RE = /^[A-Za-z0-9_-]{1,64}$/;

export const BROADCAST = "broadcast";

export type Topic =
  | { kind: "room"; name: string }
  | { kind: "user"; id: string }
  | { kind: "broadcast" }
  | { kind: "dead"; topic: Exclude<Topic, { kind: "dead" }>; group: string };

/** Parses a topic name; `undefined` when it is none of the forms (`INVALID_TOPIC`). */
export function parseTopic(name: string): Topic | undefined {
  if (name === BROADCAST) return { kind: "broadcast" };
  if (name.startsWith("room:")) {
    const room = name.slice(5);
    return NAME_RE.test(room) ? { kind: "room", name: room } : undefined;
  }
  if (name.startsWith("user:")) {
    const id = name.slice(5);
    return NAME_RE.test(id) ? { kind: "user", id } : undefined;
  }
  if (name.startsWith("dead:")) {
    const rest = name.slice(5);
    const cut = rest.lastIndexOf(":");
    if (cut < 0) return undefined;
    const group = rest.slice(cut + 1);
    const innerName = rest.slice(0, cut);
    // Refused before recursing, so that a hostile "dead:dead:dead:..." cannot exhaust the stack.
    if (innerName.startsWith("dead:") || !NAME_RE.test(group)) return undefined;
    const inner = parseTopic(innerName);
    if (!inner || inner.kind === "dead") return undefined;
    return { kind: "dead", topic: inner, group };
  }
  return undefined;
}

export const roomTopic = (name: string): string => `room:${name}`;
export const inboxTopic = (user: string): string => `user:${user}`;
export const deadTopic = (topic: string, group: string): string => `dead:${topic}:${group}`;

/** Subscribing also grants `history` and `presence`. */
export function canSubscribe(user: string, topic: Topic): boolean {
  switch (topic.kind) {
    case "room":
    case "broadcast":
      return true;
    case "user":
      return topic.id === user;
    case "dead":
      return canSubscribe(user, topic.topic);
  }
}

/** Publishing also grants `signal`. Dead-letter topics are written by the server only. */
export function canPublish(topic: Topic, admin: boolean): boolean {
  switch (topic.kind) {
    case "room":
    case "user":
      return true;
    case "broadcast":
      return admin;
    case "dead":
      return false;
  }
}
