/** PROTOCOL.md "HTTP": every route in scope, its credentials and every status code. */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { SignJWT } from "jose";
import { call, metric, ok, pub, sub } from "./conformance.js";
import { connect, type RawSocket, startServer, type TestServer } from "./helpers.js";

const MAX_PAYLOAD = 1000;

interface Res {
  status: number;
  body: unknown;
  headers: Headers;
}

async function http(url: string, init: RequestInit & { user?: string; token?: string } = {}): Promise<Res> {
  const headers = new Headers(init.headers);
  if (init.user !== undefined) headers.set("x-herald-user", init.user);
  if (init.token !== undefined) headers.set("authorization", `Bearer ${init.token}`);
  if (typeof init.body === "string" && !headers.has("content-type")) headers.set("content-type", "application/json");
  const res = await fetch(url, { ...init, headers });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {}
  return { status: res.status, body, headers: res.headers };
}

/** Asserts an error response: the status and `{ "error": { code, message } }`. */
function failed(res: Res, status: number, code: string): { code: string; message: string; retryAfterMs?: number } {
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status} ${JSON.stringify(res.body)}`);
  const body = res.body as { error: { code: string; message: string; retryAfterMs?: number } };
  assert.deepEqual(Object.keys(body), ["error"]);
  assert.equal(body.error.code, code);
  assert.equal(typeof body.error.message, "string");
  return body.error;
}

/** Small enough that one test meets it; the others (reads take tokens too) stay below it. */
const RATE = 20;

describe("http: dev mode", () => {
  let server: TestServer;
  let alice: RawSocket;
  /** `user: null` sends no credentials. */
  const publish = (body: unknown, user: string | null = "alice") =>
    http(`${server.url}/api/v1/publish`, {
      method: "POST",
      body: JSON.stringify(body),
      ...(user === null ? {} : { user }),
    });
  before(async () => {
    server = await startServer({ maxPayload: MAX_PAYLOAD, rateLimit: RATE });
    alice = await connect(server.url, { user: "alice", clientId: "http" });
  });
  after(async () => {
    alice.close();
    await server.close();
  });

  it("GET /healthz: 200 {ok: true}, no credentials", async () => {
    const res = await http(`${server.url}/healthz`);
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { ok: true });
  });

  it("POST /api/v1/publish: 200 {seq, ts, duplicate}, stored and delivered like a socket publish", async () => {
    const rec = await sub(alice, "room:h1");
    assert.deepEqual(rec, { head: 0, acked: 0 });
    const got = new Promise<unknown>((resolve) => alice.once("messages", resolve));
    const res = await publish({ id: "h1-1", topic: "room:h1", payload: { a: 1 }, key: "k" }, "bob");
    assert.equal(res.status, 200);
    const body = res.body as { seq: number; ts: number; duplicate: boolean };
    assert.deepEqual(Object.keys(body).sort(), ["duplicate", "seq", "ts"]);
    assert.equal(body.seq, 1);
    assert.equal(body.duplicate, false);
    assert.deepEqual(await got, [
      { id: "h1-1", topic: "room:h1", seq: 1, from: "bob", ts: body.ts, key: "k", payload: { a: 1 } },
    ]);
    const again = await publish({ id: "h1-1", topic: "room:h1", payload: 2 }, "bob");
    assert.deepEqual(again.body, { seq: 1, ts: body.ts, duplicate: true });
  });

  it("POST /api/v1/publish: 400, 401, 403 and 413 as the error table says", async () => {
    const refused = async (code: string) =>
      metric(await (await fetch(`${server.url}/metrics`)).text(), "herald_publishes_total", { result: code });
    const before = await Promise.all(["INVALID_TOPIC", "FORBIDDEN", "PAYLOAD_TOO_LARGE"].map(refused));
    failed(await publish({ id: "x", topic: "room:h2", payload: 1 }, null), 401, "UNAUTHORIZED");
    failed(await publish({ id: "x", topic: "room:h2", payload: 1 }, "bad user"), 400, "BAD_REQUEST");
    failed(await publish({ topic: "room:h2", payload: 1 }), 400, "BAD_REQUEST");
    failed(await publish({ id: "x", topic: "room:h2", payload: 1, extra: 1 }), 400, "BAD_REQUEST");
    failed(await publish({ id: "x", topic: "room:h2", payload: 1, key: null }), 400, "BAD_REQUEST");
    failed(await publish({ id: "bad id", topic: "room:h2", payload: 1 }), 400, "BAD_REQUEST");
    failed(await publish([1, 2]), 400, "BAD_REQUEST");
    failed(await publish("text"), 400, "BAD_REQUEST");
    failed(await publish({ id: "x", topic: "nope", payload: 1 }), 400, "INVALID_TOPIC");
    failed(await publish({ id: "x", topic: "dead:room:h2:g", payload: 1 }), 403, "FORBIDDEN");
    failed(await publish({ id: "x", topic: "room:h2", payload: "x".repeat(MAX_PAYLOAD) }), 413, "PAYLOAD_TOO_LARGE");
    // Not JSON, or no JSON content type.
    const url = `${server.url}/api/v1/publish`;
    failed(await http(url, { method: "POST", user: "alice", body: "{not json" }), 400, "BAD_REQUEST");
    failed(
      await http(url, {
        method: "POST",
        user: "alice",
        body: JSON.stringify({ id: "x", topic: "room:h2", payload: 1 }),
        headers: { "content-type": "text/plain" },
      }),
      400,
      "BAD_REQUEST",
    );
    failed(await http(url, { method: "POST", user: "alice" }), 400, "BAD_REQUEST");
    // A body over the parser's limit (at least HERALD_MAX_PAYLOAD + 4 KiB) is 413 too.
    const huge = JSON.stringify({ id: "x", topic: "room:h2", payload: "x".repeat(MAX_PAYLOAD + 64 * 1024) });
    failed(await http(url, { method: "POST", user: "alice", body: huge }), 413, "PAYLOAD_TOO_LARGE");
    // The parser's limit is no lower than HERALD_MAX_PAYLOAD + 4 KiB: such a body reaches the payload check.
    const padded = JSON.stringify({ id: "x", topic: "room:h2", payload: "x".repeat(MAX_PAYLOAD - 10) });
    const withSpace = `${padded.slice(0, -1)}${" ".repeat(MAX_PAYLOAD + 4096 - padded.length)}}`;
    assert.equal(Buffer.byteLength(withSpace), MAX_PAYLOAD + 4096);
    const res = await http(url, { method: "POST", user: "alice", body: withSpace });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal((await ok(call(alice, "history", { topic: "room:h2" }))).head, 1, "only the good one was stored");
    // Counted in /metrics by code, as a refused socket publish is: one each here, two 413s.
    const after = await Promise.all(["INVALID_TOPIC", "FORBIDDEN", "PAYLOAD_TOO_LARGE"].map(refused));
    assert.deepEqual(
      after.map((n, i) => n - before[i]!),
      [1, 1, 2],
    );
  });

  it("POST /api/v1/publish: 429 with Retry-After in whole seconds, one bucket per user", async () => {
    // At once, so that the bucket refills by only a few tokens meanwhile, even on a loaded machine.
    const all = await Promise.all(
      Array.from({ length: 2 * RATE }, (_, i) => publish({ id: `r-${i}`, topic: "room:h3", payload: i }, "rl")),
    );
    const accepted = all.filter((r) => r.status === 200).length;
    assert.ok(accepted >= RATE && accepted < 2 * RATE, `${accepted} accepted`);
    const res = all.find((r) => r.status !== 200)!;
    const err = failed(res, 429, "RATE_LIMITED");
    assert.ok(err.retryAfterMs! > 0 && err.retryAfterMs! <= 1000 / RATE);
    assert.equal(res.headers.get("retry-after"), String(Math.ceil(err.retryAfterMs! / 1000)));
    // Another user has a bucket of its own, and so has a socket connection of the same user.
    assert.equal((await publish({ id: "o-1", topic: "room:h3", payload: 1 }, "other")).status, 200);
    const rl = await connect(server.url, { user: "rl" });
    await pub(rl, "room:h3", "s-1");
    rl.close();
  });

  it("GET /api/v1/topics/:topic/messages: history, with :topic percent-decoded", async () => {
    for (let i = 1; i <= 5; i++) await pub(alice, "room:h4", `h4-${i}`);
    for (const topic of ["room:h4", "room%3Ah4", "room%3ah4"]) {
      const res = await http(`${server.url}/api/v1/topics/${topic}/messages?after=1&limit=2`, { user: "alice" });
      assert.equal(res.status, 200, `${topic}: ${JSON.stringify(res.body)}`);
      const body = res.body as { messages: { seq: number; from: string }[]; head: number };
      assert.deepEqual(Object.keys(body).sort(), ["head", "messages"]);
      assert.deepEqual(
        body.messages.map((m) => m.seq),
        [2, 3],
      );
      assert.equal(body.head, 5);
    }
    const newest = await http(`${server.url}/api/v1/topics/room:h4/messages?before=5&limit=2`, { user: "alice" });
    assert.deepEqual(
      (newest.body as { messages: { seq: number }[] }).messages.map((m) => m.seq),
      [3, 4],
    );
    const all = await http(`${server.url}/api/v1/topics/room:h4/messages`, { user: "alice" });
    assert.equal((all.body as { messages: unknown[] }).messages.length, 5);
    const base = `${server.url}/api/v1/topics`;
    failed(await http(`${base}/room:h4/messages`), 401, "UNAUTHORIZED");
    failed(await http(`${base}/user:bob/messages`, { user: "alice" }), 403, "FORBIDDEN");
    failed(await http(`${base}/user%3Abob/messages`, { user: "alice" }), 403, "FORBIDDEN");
    failed(await http(`${base}/nope/messages`, { user: "alice" }), 400, "INVALID_TOPIC");
    for (const q of ["limit=0", "limit=abc", "limit=1.5", "before=0", "after=-1", "from=1", "limit="]) {
      failed(await http(`${base}/room:h4/messages?${q}`, { user: "alice" }), 400, "BAD_REQUEST");
    }
    const capped = await http(`${base}/room:h4/messages?limit=100000`, { user: "alice" });
    assert.equal(capped.status, 200);
  });

  it("GET /api/v1/stats: topics with head, subscriptions with lag, live connections", async () => {
    assert.equal((await publish({ id: "h5-1", topic: "room:h5", payload: 1 }, "stats")).status, 200);
    await sub(alice, "room:h5");
    assert.equal((await publish({ id: "h5-2", topic: "room:h5", payload: 2 }, "stats")).status, 200);
    const res = await http(`${server.url}/api/v1/stats`, { user: "alice" });
    assert.equal(res.status, 200);
    const stats = res.body as {
      topics: { topic: string; head: number }[];
      subscriptions: { user: string; clientId: string; topic: string; acked: number; lag: number }[];
      connections: number;
    };
    assert.deepEqual(
      stats.topics.find((t) => t.topic === "room:h5"),
      { topic: "room:h5", head: 2 },
    );
    const s = stats.subscriptions.find((x) => x.topic === "room:h5" && x.clientId === "http");
    assert.equal(s?.user, "alice");
    assert.equal(s?.acked, 1);
    assert.equal(s?.lag, 1);
    assert.ok(stats.connections >= 1);
    failed(await http(`${server.url}/api/v1/stats`), 401, "UNAUTHORIZED");
  });

  it("GET /metrics: Prometheus text, no credentials", async () => {
    const res = await fetch(`${server.url}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/plain/);
    const text = await res.text();
    assert.match(text, /^# HELP herald_/m);
    assert.ok(metric(text, "herald_publishes_total") > 0);
    assert.ok(metric(text, "herald_connections") >= 1);
  });

  it("answers 404 NOT_FOUND JSON for an unknown /api/ route or method", async () => {
    for (const [method, path] of [
      ["GET", "/api/v1/nope"],
      ["GET", "/api/nope"],
      ["GET", "/api/v1/publish"],
      ["DELETE", "/api/v1/topics/room:h4/messages"],
      ["POST", "/api/v1/topics/room:h4/messages"],
      ["GET", "/api/v2/stats"],
    ] as const) {
      failed(await http(`${server.url}${path}`, { method, user: "alice" }), 404, "NOT_FOUND");
    }
  });
});

describe("http: jwt mode", () => {
  const SECRET = "http-test-secret-0123456789abcdef";
  let server: TestServer;
  const token = (claims: Record<string, unknown>) =>
    new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode(SECRET));
  before(async () => {
    server = await startServer({ auth: "jwt", jwtSecret: SECRET });
  });
  after(() => server.close());

  it("takes a Bearer token, ignores X-Herald-User, and keeps stats for admins", async () => {
    const user = await token({ sub: "alice" });
    const admin = await token({ sub: "root", admin: true });
    const res = await http(`${server.url}/api/v1/publish`, {
      method: "POST",
      token: user,
      user: "mallory",
      body: JSON.stringify({ id: "j1", topic: "room:j", payload: 1 }),
    });
    assert.equal(res.status, 200);
    const hist = await http(`${server.url}/api/v1/topics/room:j/messages`, { token: user });
    assert.equal((hist.body as { messages: { from: string }[] }).messages[0]!.from, "alice");
    failed(await http(`${server.url}/api/v1/stats`, { token: user }), 403, "FORBIDDEN");
    failed(
      await http(`${server.url}/api/v1/stats`, { token: await token({ sub: "u", admin: "true" }) }),
      403,
      "FORBIDDEN",
    );
    assert.equal((await http(`${server.url}/api/v1/stats`, { token: admin })).status, 200);
    failed(await http(`${server.url}/api/v1/stats`, { user: "root" }), 401, "UNAUTHORIZED");
    failed(await http(`${server.url}/api/v1/stats`, { token: "garbage" }), 401, "UNAUTHORIZED");
    failed(await http(`${server.url}/api/v1/stats`, { headers: { authorization: admin } }), 401, "UNAUTHORIZED");
    const expired = await token({ sub: "root", admin: true, exp: Math.floor(Date.now() / 1000) - 1 });
    failed(await http(`${server.url}/api/v1/stats`, { token: expired }), 401, "UNAUTHORIZED");
    // Broadcast needs an admin over HTTP too.
    const b = JSON.stringify({ id: "b1", topic: "broadcast", payload: 1 });
    failed(await http(`${server.url}/api/v1/publish`, { method: "POST", token: user, body: b }), 403, "FORBIDDEN");
    assert.equal((await http(`${server.url}/api/v1/publish`, { method: "POST", token: admin, body: b })).status, 200);
    // /healthz and /metrics need no credentials.
    assert.equal((await http(`${server.url}/healthz`)).status, 200);
    assert.equal((await http(`${server.url}/metrics`)).status, 200);
  });
});
