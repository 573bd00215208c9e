/**
 * Who is connecting (PROTOCOL.md "Transport"): in `dev` mode `auth.user` (or the HTTP header
 * `X-Herald-User`) is the user, an admin unless HERALD_ADMINS names the admins; in `jwt` mode an HS256 token signed with
 * HERALD_JWT_SECRET whose `sub` is the user, `exp`/`nbf` checked with no leeway, `admin: true` the
 * only way to admin rights.
 */
import { jwtVerify } from "jose";
import { HeraldError } from "../shared/errors.js";
import { NAME_RE } from "../shared/topics.js";
import type { Config } from "./config.js";

export interface Identity {
  user: string;
  admin: boolean;
}

export class Authenticator {
  private readonly secret: Uint8Array | undefined;

  constructor(private readonly config: Readonly<Config>) {
    this.secret = config.jwtSecret === undefined ? undefined : new TextEncoder().encode(config.jwtSecret);
  }

  /** `user` is the dev-mode user id, `token` the jwt-mode token; whichever the mode does not use is ignored. */
  async identify(credentials: { user?: unknown; token?: unknown }): Promise<Identity> {
    if (this.config.auth === "dev") {
      const { user } = credentials;
      if (user === undefined || user === "") throw new HeraldError("UNAUTHORIZED", "a user id is required");
      if (typeof user !== "string" || !NAME_RE.test(user)) {
        throw new HeraldError("BAD_REQUEST", "user: 1-64 chars of [A-Za-z0-9._-], starting with a letter or digit");
      }
      return { user, admin: this.config.admins?.includes(user) ?? true };
    }
    const { token } = credentials;
    if (typeof token !== "string" || token === "") throw new HeraldError("UNAUTHORIZED", "a token is required");
    try {
      const { payload } = await jwtVerify(token, this.secret!, { algorithms: ["HS256"], clockTolerance: 0 });
      if (typeof payload.sub !== "string" || !NAME_RE.test(payload.sub)) {
        throw new Error("sub is not a valid user id");
      }
      return { user: payload.sub, admin: payload.admin === true };
    } catch (cause) {
      throw new HeraldError("UNAUTHORIZED", "invalid or expired token", { cause });
    }
  }
}
