/**
 * The payload rules of PROTOCOL.md: any JSON value of at most HERALD_MAX_PAYLOAD bytes as UTF-8
 * JSON; binary attachments are BAD_REQUEST. Serialises once: the JSON is what the store keeps.
 * And the message a `publish` or `prepare` makes of its arguments, once they pass.
 */
import { HeraldError } from "../shared/errors.js";
import { MAX_PAYLOAD_DEPTH } from "../shared/protocol.js";
import type { PublishArgs } from "../shared/schemas.js";
import { type Caller, requirePublish } from "./caller.js";
import type { NewMessage } from "./store/store.js";

/** Throws BAD_REQUEST for binary or over-deep values, PAYLOAD_TOO_LARGE past the limit; returns the JSON. */
export function encodePayload(payload: unknown, maxBytes: number, what = "payload"): string {
  checkShape(payload, what);
  const json = JSON.stringify(payload);
  // A string's UTF-8 size is at most 3 bytes per UTF-16 unit: skip the exact count when it cannot matter.
  if (json.length * 3 > maxBytes && Buffer.byteLength(json) > maxBytes) {
    throw new HeraldError("PAYLOAD_TOO_LARGE", `${what} is over ${maxBytes} bytes of JSON`);
  }
  return json;
}

/** Iterative, so that a hostile nesting depth cannot overflow the stack before it is refused. */
function checkShape(root: unknown, what: string): void {
  if (root === null || typeof root !== "object") return;
  const stack: [unknown, number][] = [[root, 1]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop()!;
    if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) {
      throw new HeraldError("BAD_REQUEST", `${what} must be JSON: binary attachments are not accepted`);
    }
    if (depth > MAX_PAYLOAD_DEPTH) {
      throw new HeraldError("BAD_REQUEST", `${what} is nested deeper than ${MAX_PAYLOAD_DEPTH} levels`);
    }
    for (const child of Array.isArray(value) ? value : Object.values(value as object)) {
      if (child !== null && typeof child === "object") stack.push([child, depth + 1]);
    }
  }
}

/**
 * What `publish` and `prepare` check first, in PROTOCOL's order (BAD_REQUEST, by the schema, done
 * by the caller; INVALID_TOPIC, FORBIDDEN, PAYLOAD_TOO_LARGE; then the caller's RATE_LIMITED,
 * BACKLOG_FULL, CONFLICT), and the message it makes. A refused call takes no token.
 */
export function acceptPublish(maxPayload: number, caller: Caller, args: PublishArgs): NewMessage {
  requirePublish(caller, args.topic);
  const json = encodePayload(args.payload, maxPayload);
  const message: NewMessage = { id: args.id, topic: args.topic, from: caller.user, payload: args.payload, json };
  if (args.key !== undefined) message.key = args.key;
  return message;
}
