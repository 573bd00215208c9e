/**
 * The one table of Herald's error codes (PROTOCOL.md "Errors"): the code, the HTTP status it maps
 * to, and when it is used. `test/errors.test.ts` keeps this table, docs/protocol.md and
 * PROTOCOL.md in step.
 */
export const ERRORS = {
  BAD_REQUEST: {
    status: 400,
    when: "a malformed argument: wrong type, missing or unknown field, bad id, key, seq, limit or name",
  },
  INVALID_TOPIC: { status: 400, when: "a topic name that is not one of the topic forms" },
  FORBIDDEN: { status: 403, when: "not allowed for this user (another user's inbox, broadcast without admin)" },
  PAYLOAD_TOO_LARGE: { status: 413, when: "payload over HERALD_MAX_PAYLOAD" },
  RATE_LIMITED: { status: 429, when: "over HERALD_RATE_LIMIT a second per connection (per user over HTTP)" },
  BACKLOG_FULL: { status: 503, when: "a group of the topic has a backlog of HERALD_MAX_BACKLOG or more" },
  UNAUTHORIZED: { status: 401, when: "missing, bad or expired credentials" },
  UNAVAILABLE: { status: 503, when: "no live connection to answer a request, or it went away" },
  TIMEOUT: { status: 504, when: "no answer to a request within timeoutMs" },
  REPLACED: { status: 409, when: "a newer connection with the same (user, clientId) took over" },
  NOT_FOUND: { status: 404, when: "an unknown transaction id or /api/ route" },
  CONFLICT: { status: 409, when: "a transaction id in the wrong state" },
  LIMIT_EXCEEDED: {
    status: 429,
    when: "a subscribe that would give the user more than HERALD_MAX_SUBSCRIPTIONS subscriptions and memberships",
  },
  INTERNAL: { status: 500, when: "a bug or a storage failure; the message was not accepted" },
} as const satisfies Record<string, { status: number; when: string }>;

export type ErrorCode = keyof typeof ERRORS;

export const ERROR_CODES = Object.keys(ERRORS) as ErrorCode[];

/** The error object of the wire protocol: `{ code, message, retryAfterMs? }`. */
export interface Err {
  code: ErrorCode;
  message: string;
  retryAfterMs?: number;
}

/**
 * The one error class of Herald, on the server and in the SDK. It keeps `cause` (nats.js style) so
 * that a storage failure turned into `INTERNAL` still carries what went wrong for the logs.
 */
export class HeraldError extends Error {
  readonly code: ErrorCode;
  readonly retryAfterMs?: number;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; retryAfterMs?: number } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "HeraldError";
    this.code = code;
    if (options.retryAfterMs !== undefined) this.retryAfterMs = options.retryAfterMs;
  }

  /** The wire form: optional fields are absent, never null (PROTOCOL.md "Transport"). */
  toJSON(): Err {
    const err: Err = { code: this.code, message: this.message };
    if (this.retryAfterMs !== undefined) err.retryAfterMs = this.retryAfterMs;
    return err;
  }

  static fromWire(err: Err): HeraldError {
    return new HeraldError(
      err.code,
      err.message,
      err.retryAfterMs === undefined ? {} : { retryAfterMs: err.retryAfterMs },
    );
  }
}

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === "string" && Object.hasOwn(ERRORS, code);
}
