/**
 * PROTOCOL.md "Transport and connection", auth modes: the handshake in `dev` and `jwt` mode, its
 * errors (`connect_error` with `err.message` the code and `err.data` the Err), admin rights, inboxes.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { generateKeyPair, type JWTPayload, SignJWT } from "jose";
import { call, eventually, fails, ok, pub, record, sub } from "./conformance.js";
import { type ConnectOptions, connect, type RawSocket, sleep, startServer, type TestServer } from "./helpers.js";

const SECRET = "conformance-secret-0123456789abcdef";
const key = new TextEncoder().encode(SECRET);
const now = () => Math.floor(Date.now() / 1000);

async function token(claims: JWTPayload, options: { alg?: string; secret?: Uint8Array } = {}): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: options.alg ?? "HS256" }).sign(options.secret ?? key);
}

/** An unsigned token (`alg: none`), which jose will not make. */
function unsigned(claims: JWTPayload): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
  return `${b64({ alg: "none", typ: "JWT" })}.${b64(claims)}.`;
}

/** Asserts the handshake is refused with `code` as `err.message` and the Err as `err.data`. */
async function refused(url: string, options: ConnectOptions, code: string): Promise<void> {
  const err = (await connect(url, options).then(
    (s) => {
      s.close();
      assert.fail(`connected with ${JSON.stringify(options)}`);
    },
    (e: unknown) => e,
  )) as Error & { data?: { code: string; message: string } };
  assert.equal(err.message, code, `${JSON.stringify(options)}`);
  assert.equal(err.data?.code, code);
  assert.equal(typeof err.data?.message, "string");
  assert.deepEqual(Object.keys(err.data ?? {}).sort(), ["code", "message"]);
}

describe("protocol: dev auth", () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  it("takes auth.user as the user id and makes everyone an admin", async () => {
    const alice = await connect(server.url, { user: "alice" });
    const rec = record(alice);
    await sub(alice, "room:a");
    await pub(alice, "room:a", "a-1");
    await eventually(() => rec.messages().length === 1, "own message");
    assert.equal(rec.messages()[0]!.from, "alice");
    await pub(alice, "broadcast", "b-1");
    // Admin or not, another user's inbox is its own.
    await fails(call(alice, "subscribe", { topic: "user:bob" }), "FORBIDDEN");
    alice.close();
  });

  it("refuses a missing user with UNAUTHORIZED and a malformed user or clientId with BAD_REQUEST", async () => {
    await refused(server.url, { auth: { clientId: "c1" } }, "UNAUTHORIZED");
    for (const user of ["bad user", ".alice", "u".repeat(65), 5, true, {}, ["alice"], null]) {
      await refused(server.url, { auth: { clientId: "c1", user } }, "BAD_REQUEST");
    }
    for (const clientId of ["", "bad id", "c".repeat(65), "a.b", 5, null, undefined]) {
      await refused(server.url, { auth: { clientId, user: "alice" } }, "BAD_REQUEST");
    }
    await refused(server.url, { auth: {} }, "BAD_REQUEST");
    // A malformed clientId is answered first, whatever the user.
    await refused(server.url, { auth: { clientId: "bad id" } }, "BAD_REQUEST");
    // Optional fields are absent, never null; an unknown field is BAD_REQUEST.
    await refused(server.url, { auth: { clientId: "c1", user: "alice", token: null } }, "BAD_REQUEST");
    await refused(server.url, { auth: { clientId: "c1", user: "alice", extra: 1 } }, "BAD_REQUEST");
    // Ids are case-sensitive and 64 chars are fine.
    const s = await connect(server.url, { auth: { clientId: "C".repeat(64), user: "A".repeat(64) } });
    s.close();
  });
});

describe("protocol: jwt auth", () => {
  let server: TestServer;
  const open: RawSocket[] = [];
  const login = async (claims: JWTPayload, clientId?: string) => {
    const s = await connect(server.url, { token: await token(claims), ...(clientId ? { clientId } : {}) });
    open.push(s);
    return s;
  };
  before(async () => {
    server = await startServer({ auth: "jwt", jwtSecret: SECRET });
  });
  after(async () => {
    for (const s of open) s.close();
    await server.close();
  });

  it("takes `sub` of an HS256 token as the user and ignores auth.user", async () => {
    const s = await connect(server.url, { token: await token({ sub: "alice" }), user: "mallory" });
    open.push(s);
    const rec = record(s);
    await sub(s, "user:alice");
    await fails(call(s, "subscribe", { topic: "user:mallory" }), "FORBIDDEN");
    await pub(s, "user:alice", "j-1");
    await eventually(() => rec.messages().length === 1, "own inbox");
    assert.equal(rec.messages()[0]!.from, "alice");
    const withExp = await login({ sub: "alice", exp: now() + 60, nbf: now() - 1, iat: now() });
    await pub(withExp, "room:j", "j-2");
  });

  it("refuses every token fault with UNAUTHORIZED", async () => {
    const url = server.url;
    const rsa = await generateKeyPair("RS256");
    const cases: [string, string | undefined][] = [
      ["missing", undefined],
      ["empty", ""],
      ["garbage", "not-a-jwt"],
      ["expired", await token({ sub: "alice", exp: now() - 1 })],
      ["nbf in the future", await token({ sub: "alice", nbf: now() + 60 })],
      [
        "wrong secret",
        await token({ sub: "alice" }, { secret: new TextEncoder().encode("another-secret-xxxxxxxxxxxxxxxx") }),
      ],
      ["alg none", unsigned({ sub: "alice" })],
      ["HS384", await token({ sub: "alice" }, { alg: "HS384" })],
      ["HS512", await token({ sub: "alice" }, { alg: "HS512" })],
      ["RS256", await new SignJWT({ sub: "alice" }).setProtectedHeader({ alg: "RS256" }).sign(rsa.privateKey)],
      ["no sub", await token({ admin: true })],
      ["sub not a user id", await token({ sub: "bad user" })],
      ["sub too long", await token({ sub: "u".repeat(65) })],
      ["sub empty", await token({ sub: "" })],
      ["sub not a string", await token({ sub: 42 as unknown as string })],
    ];
    for (const [why, t] of cases) {
      await refused(url, t === undefined ? { clientId: "j" } : { clientId: "j", token: t }, "UNAUTHORIZED").catch(
        (err: Error) => {
          throw new Error(`${why}: ${err.message}`);
        },
      );
    }
    // The dev-mode user is no credential here.
    await refused(url, { clientId: "j", user: "alice" }, "UNAUTHORIZED");
    // A malformed clientId is BAD_REQUEST even with a good token.
    await refused(url, { clientId: "bad id", token: await token({ sub: "alice" }) }, "BAD_REQUEST");
  });

  it("grants admin rights only for the boolean admin: true", async () => {
    const admin = await login({ sub: "root", admin: true });
    await pub(admin, "broadcast", "adm-1");
    for (const [i, claim] of (["true", 1, "yes", null, false, undefined] as unknown[]).entries()) {
      const s = await login(claim === undefined ? { sub: `u${i}` } : { sub: `u${i}`, admin: claim });
      await fails(call(s, "publish", { id: `adm-x${i}`, topic: "broadcast", payload: 1 }), "FORBIDDEN");
      await fails(call(s, "signal", { topic: "broadcast", payload: 1 }), "FORBIDDEN");
      // Everyone may read broadcast, and its history.
      await sub(s, "broadcast");
      await ok(call(s, "history", { topic: "broadcast" }));
    }
  });

  it("lets any user publish to another user's inbox but not read it", async () => {
    const alice = await login({ sub: "alice" });
    const bob = await login({ sub: "bob" });
    const rec = record(bob);
    await sub(bob, "user:bob");
    await pub(alice, "user:bob", "dm-1");
    await ok(call(alice, "signal", { topic: "user:bob", payload: "typing" }));
    await eventually(() => rec.messages().length === 1 && rec.of("signal").length === 1, "dm and signal");
    await fails(call(alice, "subscribe", { topic: "user:bob" }), "FORBIDDEN");
    await fails(call(alice, "history", { topic: "user:bob" }), "FORBIDDEN");
    await fails(call(alice, "presence", { topic: "user:bob" }), "FORBIDDEN");
    await fails(call(alice, "subscribe", { topic: "dead:user:bob:g" }), "FORBIDDEN");
    await fails(call(alice, "unsubscribe", { topic: "user:bob" }), "FORBIDDEN");
  });

  it("checks the token at the handshake only: a live connection outlives it, a reconnect needs a valid one", async () => {
    const t = await token({ sub: "alice", exp: now() + 2 });
    const s = await connect(server.url, { token: t, clientId: "expiring" });
    open.push(s);
    await sleep(2100 - (Date.now() % 1000));
    while (now() < JSON.parse(Buffer.from(t.split(".")[1]!, "base64url").toString()).exp) await sleep(100);
    await pub(s, "room:exp", "exp-1");
    await refused(server.url, { token: t, clientId: "expiring" }, "UNAUTHORIZED");
    // The refused handshake did not replace the live connection.
    await pub(s, "room:exp", "exp-2");
  });
});
