/**
 * What the chat shows in its main pane, how it maps to topics, and to the page's URL:
 * `/room/NAME`, `/dm/USER` and `/announcements`.
 */
import { BROADCAST, NAME_RE } from "../../shared/topics.js";

export type Conversation = { kind: "room"; name: string } | { kind: "dm"; user: string } | { kind: "announcements" };

/** One key per conversation, for unread counts, typing and read positions. */
export function conversationKey(c: Conversation): string {
  switch (c.kind) {
    case "room":
      return `room:${c.name}`;
    case "dm":
      return `dm:${c.user}`;
    case "announcements":
      return BROADCAST;
  }
}

/** The topic a message written in the conversation goes to. */
export function publishTopic(c: Conversation): string {
  switch (c.kind) {
    case "room":
      return `room:${c.name}`;
    case "dm":
      return `user:${c.user}`;
    case "announcements":
      return BROADCAST;
  }
}

/** The topic whose log the conversation reads (and whose history loads on scroll-up). */
export function readTopic(c: Conversation, me: string): string {
  return c.kind === "dm" ? `user:${me}` : publishTopic(c);
}

export function conversationPath(c: Conversation): string {
  switch (c.kind) {
    case "room":
      return `/room/${encodeURIComponent(c.name)}`;
    case "dm":
      return `/dm/${encodeURIComponent(c.user)}`;
    case "announcements":
      return "/announcements";
  }
}

export function parsePath(pathname: string): Conversation | undefined {
  if (pathname === "/announcements") return { kind: "announcements" };
  const match = /^\/(room|dm)\/([^/]+)\/?$/.exec(pathname);
  if (!match) return undefined;
  const name = decodeURIComponent(match[2]!);
  if (!NAME_RE.test(name)) return undefined;
  return match[1] === "room" ? { kind: "room", name } : { kind: "dm", user: name };
}

export function sameConversation(a: Conversation | undefined, b: Conversation | undefined): boolean {
  return a !== undefined && b !== undefined && conversationKey(a) === conversationKey(b);
}

export function conversationTitle(c: Conversation): string {
  switch (c.kind) {
    case "room":
      return `# ${c.name}`;
    case "dm":
      return `@ ${c.user}`;
    case "announcements":
      return "Announcements";
  }
}
