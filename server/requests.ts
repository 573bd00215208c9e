/**
 * `request`: a remote call to a user (PROTOCOL.md "Client to server"). The server forwards it as
 * event `request` `{ from, method, params }` with an acknowledgement callback to the newest live
 * connection of the target user other than the caller's own, and relays the answer: `{ result }`
 * as the reply, `{ error: { code, message } }` as a refusal with that error, anything else as
 * INTERNAL. No live connection, or the target going away (disconnected or REPLACED) before it
 * answers, is UNAVAILABLE; no answer within `timeoutMs` is TIMEOUT.
 *
 * Nothing stays behind a request once it has ended: its one timer is cleared, and its entry leaves
 * the target session's set, whichever way it ends. The timer is this module's, not socket.io's
 * `timeout()` flag, because a disconnect must end the request at once; socket.io drops a gone
 * socket's waiting acknowledgements with the socket.
 *
 * Routing asks `newest(user)`, this node's newest session of a user (presence.ts), and in a
 * cluster, when the user has none here, a node that has one (cluster.ts), which runs `answer`.
 */
import { HeraldError } from "../shared/errors.js";
import { DEFAULTS, type RequestEvent, type RequestOk } from "../shared/protocol.js";
import type { RequestArgs } from "../shared/schemas.js";
import { encodePayload } from "./payload.js";
import type { Session } from "./session.js";

/** One request waiting for its answer. */
interface Waiting {
  target: Session;
  timer: ReturnType<typeof setTimeout>;
  /** The target's answer as it gave it, or why there is none (TIMEOUT, UNAVAILABLE). */
  settle(outcome: unknown): void;
}

/** Asks another node's connection of `to` (cluster.ts): its raw answer, or a HeraldError. */
export type RemoteRequest = (to: string, event: RequestEvent, timeoutMs: number) => Promise<unknown>;

/** How a relayed error's code and message may look: what an app can put there is not Herald's table. */
const MAX_ERROR_TEXT = 1024;

export class Requests {
  /** The requests waiting on each target session. */
  private readonly waiting = new Map<Session, Set<Waiting>>();

  /** Set in a cluster: where a request goes when its user has no connection on this node. */
  remote: RemoteRequest | undefined;

  constructor(
    private readonly maxPayload: number,
    private readonly newest: (user: string, except?: Session) => Session | undefined,
  ) {}

  /** Requests waiting for an answer now, over all targets (for tests and stats). */
  get pending(): number {
    let n = 0;
    for (const set of this.waiting.values()) n += set.size;
    return n;
  }

  async request(session: Session, args: RequestArgs): Promise<RequestOk> {
    const event: RequestEvent = { from: session.user, method: args.method };
    if (args.params !== undefined) {
      encodePayload(args.params, this.maxPayload, "params");
      event.params = args.params;
    }
    session.bucket.take();
    const timeoutMs = args.timeoutMs ?? DEFAULTS.requestTimeoutMs;
    const target = this.newest(args.to, session);
    let answer: unknown;
    if (target) answer = await this.ask(target, args.to, event, timeoutMs);
    else if (this.remote) answer = await this.remote(args.to, event, timeoutMs).catch((err: unknown) => err);
    else throw new HeraldError("UNAVAILABLE", `${args.to} has no live connection to answer`);
    const outcome = answer instanceof HeraldError ? answer : relay(answer, this.maxPayload);
    if (outcome instanceof HeraldError) throw outcome;
    return outcome;
  }

  /** A request routed from another node: the answer of this node's newest connection of `to`, as given. */
  async answer(to: string, event: RequestEvent, timeoutMs: number): Promise<unknown> {
    const target = this.newest(to);
    if (!target) throw new HeraldError("UNAVAILABLE", `${to} has no live connection to answer`);
    const answer = await this.ask(target, to, event, timeoutMs);
    if (answer instanceof HeraldError) throw answer;
    return answer;
  }

  /** Emits the request to the target and waits: its answer as given, or a HeraldError. */
  private ask(target: Session, to: string, event: RequestEvent, timeoutMs: number): Promise<unknown> {
    return new Promise((resolve) => {
      const waiting: Waiting = {
        target,
        timer: setTimeout(
          () => waiting.settle(new HeraldError("TIMEOUT", `${to} did not answer within ${timeoutMs} ms`)),
          timeoutMs,
        ),
        settle: (result) => {
          if (!this.forget(waiting)) return;
          resolve(result);
        },
      };
      let set = this.waiting.get(target);
      if (!set) {
        set = new Set();
        this.waiting.set(target, set);
      }
      set.add(waiting);
      target.socket.emit("request", event, (answer: unknown) => waiting.settle(answer));
    });
  }

  /** The target session is gone (disconnected, REPLACED): what waits on it is UNAVAILABLE now. */
  drop(session: Session): void {
    const set = this.waiting.get(session);
    if (!set) return;
    const gone = new HeraldError("UNAVAILABLE", `${session.user} went away before answering`);
    for (const waiting of [...set]) waiting.settle(gone);
  }

  /** Ends a waiting request once: false when it had ended already. */
  private forget(waiting: Waiting): boolean {
    const set = this.waiting.get(waiting.target);
    if (!set?.delete(waiting)) return false;
    if (set.size === 0) this.waiting.delete(waiting.target);
    clearTimeout(waiting.timer);
    return true;
  }
}

/** A responder's own error, relayed as it gave it (hub.ts `failure` passes its code on). */
export class RelayedError extends HeraldError {}

/** The target's answer as the caller's reply, or the error it becomes. */
function relay(answer: unknown, maxPayload: number): RequestOk | HeraldError {
  if (answer !== null && typeof answer === "object" && !Array.isArray(answer)) {
    const a = answer as Record<string, unknown>;
    const keys = Object.keys(a);
    if (keys.length === 1 && keys[0] === "result" && a.result !== undefined) {
      try {
        encodePayload(a.result, maxPayload, "result");
      } catch (err) {
        return err as HeraldError;
      }
      return { result: a.result };
    }
    const error = a.error as Record<string, unknown> | undefined;
    if (
      keys.length === 1 &&
      error !== null &&
      typeof error === "object" &&
      typeof error.code === "string" &&
      typeof error.message === "string" &&
      error.code.length > 0 &&
      error.code.length <= MAX_ERROR_TEXT &&
      error.message.length <= MAX_ERROR_TEXT
    ) {
      // PROTOCOL: relayed as `ok: false` with the responder's own code, which may be none of Herald's.
      return new RelayedError(error.code as HeraldError["code"], error.message);
    }
  }
  return new HeraldError("INTERNAL", "the answer was neither { result } nor { error: { code, message } }");
}
