/**
 * The security settings of PROTOCOL.md "Transport and connection", "Errors", "HTTP" and "Running",
 * against a real Herald on loopback: the `Origin` check of the handshake, `dev` auth on a public
 * address, HERALD_ADMINS, the JWT secret's length, the /metrics token and its bounded labels, the
 * web app's headers, lone surrogates, presence across a storm of REPLACED hand-overs, the
 * per-user quota of durable subscriptions, and the rate tokens the reads take.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { io } from "socket.io-client";
import { ConfigError, loadConfig } from "../server/config.js";
import type { Message } from "../shared/protocol.js";
import { call, eventually, fails, ok, pub, sub } from "./conformance.js";
import { connect, type RawSocket, ROOT, sleep, startServer, type TestServer, tempDir } from "./helpers.js";

const SECRET_32 = "0123456789abcdef0123456789abcdef";

/** A handshake with extra HTTP headers (`ws` sends them on the upgrade); resolves the socket or rejects with the connect_error. */
function connectWithHeaders(
  url: string,
  auth: Record<string, unknown>,
  extraHeaders: Record<string, string>,
): Promise<RawSocket> {
  const socket: RawSocket = io(url, {
    auth,
    extraHeaders,
    transports: ["websocket"],
    reconnection: false,
    forceNew: true,
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error("no connect or connect_error within 5 s"));
    }, 5000);
    socket.once("connect", () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once("connect_error", (err) => {
      clearTimeout(timer);
      socket.close();
      reject(err);
    });
  });
}

/** The connect_error of a handshake that must be refused: its message and data. */
async function refused(promise: Promise<RawSocket>): Promise<{ message: string; data: unknown }> {
  try {
    const socket = await promise;
    socket.close();
  } catch (err) {
    return { message: (err as Error).message, data: (err as { data?: unknown }).data };
  }
  return assert.fail("the handshake was accepted");
}

function assertForbidden(err: { message: string; data: unknown }): void {
  assert.equal(err.message, "FORBIDDEN");
  const data = err.data as { code?: string; message?: string };
  assert.equal(data?.code, "FORBIDDEN", `data ${JSON.stringify(err.data)}`);
  assert.equal(typeof data.message, "string");
}

/**
 * A socket.io handshake over raw long-polling with an `Origin` header on every request (the Node
 * client's XHR drops `Origin`): the engine.io open, the CONNECT packet, then the server's answer.
 */
async function pollingHandshake(url: string, origin: string, auth: Record<string, unknown>): Promise<string> {
  const base = `${url}/socket.io/?EIO=4&transport=polling`;
  const headers = { origin };
  const open = await (await fetch(base, { headers, signal: AbortSignal.timeout(5000) })).text();
  const sid = (JSON.parse(open.slice(1)) as { sid: string }).sid;
  const posted = await fetch(`${base}&sid=${sid}`, {
    method: "POST",
    headers: { ...headers, "content-type": "text/plain;charset=UTF-8" },
    body: `40${JSON.stringify(auth)}`,
    signal: AbortSignal.timeout(5000),
  });
  assert.equal(posted.status, 200);
  await posted.text();
  return (await fetch(`${base}&sid=${sid}`, { headers, signal: AbortSignal.timeout(5000) })).text();
}

interface Res {
  status: number;
  body: unknown;
  text: string;
  headers: Headers;
}

async function http(url: string, init: RequestInit & { user?: string } = {}): Promise<Res> {
  const headers = new Headers(init.headers);
  if (init.user !== undefined) headers.set("x-herald-user", init.user);
  if (typeof init.body === "string" && !headers.has("content-type")) headers.set("content-type", "application/json");
  const res = await fetch(url, { ...init, headers, signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {}
  return { status: res.status, body, text, headers: res.headers };
}

function httpError(res: Res, status: number, code: string): { code: string; message: string; retryAfterMs?: number } {
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status} ${res.text}`);
  const body = res.body as { error: { code: string; message: string; retryAfterMs?: number } };
  assert.deepEqual(Object.keys(body), ["error"]);
  assert.equal(body.error.code, code);
  assert.equal(typeof body.error.message, "string");
  return body.error;
}

/** The problems of a ConfigError that loadConfig must throw. */
function configProblems(env: NodeJS.ProcessEnv): string {
  try {
    loadConfig(env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `a ConfigError, got ${String(err)}`);
    return err.problems.join("\n");
  }
  return assert.fail(`loadConfig(${JSON.stringify(env)}) accepted it`);
}

/** Runs server/main.ts as a child with a clean HERALD_* environment, recording stdout and stderr. */
function runMain(env: Record<string, string>) {
  const clean: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith("HERALD_") && name !== "HOST" && name !== "PORT") clean[name] = value;
  }
  const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "server/main.ts")], {
    cwd: ROOT,
    env: { ...clean, PORT: "0", HERALD_LOG_LEVEL: "error", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  child.stdout!.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr!.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  return {
    child,
    exited,
    output: () => output,
    /** Resolves once `re` matches the output; rejects when the child exits first or after `ms`. */
    async waitFor(re: RegExp, ms = 20000): Promise<RegExpExecArray> {
      const until = Date.now() + ms;
      for (;;) {
        const match = re.exec(output);
        if (match) return match;
        if (child.exitCode !== null) assert.fail(`exited with ${child.exitCode} before ${re}:\n${output}`);
        if (Date.now() > until) assert.fail(`no ${re} within ${ms} ms:\n${output}`);
        await sleep(20);
      }
    },
    /** The exit code, SIGKILLing the child after `ms`, or at once when `killOn` matches its output. */
    async exit(ms = 20000, killOn?: RegExp): Promise<number | null> {
      const timer = setTimeout(() => child.kill("SIGKILL"), ms);
      const poll = setInterval(() => {
        if (killOn?.test(output)) child.kill("SIGKILL");
      }, 20);
      const code = await exited;
      clearTimeout(timer);
      clearInterval(poll);
      return code;
    },
  };
}

describe("security: Origin of the handshake", { timeout: 30000 }, () => {
  let server: TestServer;
  const open: RawSocket[] = [];
  before(async () => {
    server = await startServer({ allowedOrigins: ["https://chat.example"] });
  });
  after(async () => {
    for (const s of open) s.close();
    await server.close();
  });

  it("refuses a foreign Origin with FORBIDDEN, over WebSocket and long-polling", async () => {
    assertForbidden(
      await refused(
        connectWithHeaders(server.url, { clientId: "o1", user: "alice" }, { origin: "https://evil.example" }),
      ),
    );
    // A sandboxed frame or file:// page sends "null"; another port of the same host is another origin.
    assertForbidden(
      await refused(connectWithHeaders(server.url, { clientId: "o2", user: "alice" }, { origin: "null" })),
    );
    const port = new URL(server.url).port;
    assertForbidden(
      await refused(
        connectWithHeaders(
          server.url,
          { clientId: "o3", user: "alice" },
          { origin: `http://127.0.0.1:${Number(port) === 65535 ? 1 : Number(port) + 1}` },
        ),
      ),
    );
    // An origin that only starts like a listed one.
    assertForbidden(
      await refused(
        connectWithHeaders(server.url, { clientId: "o4", user: "alice" }, { origin: "https://chat.example.evil.net" }),
      ),
    );
    const answer = await pollingHandshake(server.url, "https://evil.example", { clientId: "o5", user: "alice" });
    assert.ok(answer.startsWith("44"), `a CONNECT_ERROR packet, got ${answer}`);
    const packet = JSON.parse(answer.slice(2)) as { message: string; data: { code: string } };
    assert.equal(packet.message, "FORBIDDEN");
    assert.equal(packet.data.code, "FORBIDDEN");
  });

  it("accepts the hub's own origin, a listed origin and no Origin at all", async () => {
    const own = await connectWithHeaders(server.url, { clientId: "o6", user: "alice" }, { origin: server.url });
    open.push(own);
    await sub(own, "room:o");
    const listed = await connectWithHeaders(
      server.url,
      { clientId: "o7", user: "bob" },
      { origin: "https://chat.example" },
    );
    open.push(listed);
    await sub(listed, "room:o");
    const node = await connect(server.url, { user: "carol", clientId: "o8" });
    open.push(node);
    await sub(node, "room:o");
    const answer = await pollingHandshake(server.url, server.url, { clientId: "o9", user: "dave" });
    assert.ok(answer.startsWith("40"), `a CONNECT packet, got ${answer}`);
  });

  // Under DNS rebinding a page of evil.example whose name now resolves to 127.0.0.1 sends Origin and
  // Host both naming evil.example: in dev auth a Host counts as the hub's own only when it is a
  // loopback name, an IP address, HOST or a listed origin's (server/origin.ts).
  it("refuses a foreign Origin whose Host names the same foreign site (DNS rebinding), socket and HTTP", async () => {
    const port = new URL(server.url).port;
    const foreign = `evil.example:${port}`;
    assertForbidden(
      await refused(
        connectWithHeaders(
          server.url,
          { clientId: "o10", user: "root" },
          { origin: `http://${foreign}`, host: foreign },
        ),
      ),
    );
    const res = await rawRequest(
      server.url,
      `GET /api/v1/topics/room:o/messages HTTP/1.1\r\nHost: ${foreign}\r\nX-Herald-User: root\r\nConnection: close\r\n\r\n`,
    );
    assert.match(res, /^HTTP\/1\.1 403 /);
    assert.match(res, /"code":"FORBIDDEN"/);
    // localhost, IP addresses and the listed origin's host are this hub's.
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, "chat.example"]) {
      const ok = await rawRequest(server.url, `GET /healthz HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      assert.match(ok, /^HTTP\/1\.1 200 /, host);
    }
  });
});

describe("security: dev auth on a public address", { timeout: 60000 }, () => {
  it("loadConfig refuses a non-loopback HOST with dev auth unless HERALD_DEV_PUBLIC=1", () => {
    for (const host of ["0.0.0.0", "::", "192.168.1.10"]) {
      const problems = configProblems({ HOST: host });
      assert.match(problems, /HOST/);
      assert.match(problems, /HERALD_DEV_PUBLIC/);
    }
    assert.throws(() => loadConfig({}, { host: "0.0.0.0" }), ConfigError, "an override is checked too");
    const allowed = loadConfig({ HOST: "0.0.0.0", HERALD_DEV_PUBLIC: "1" });
    assert.equal(allowed.host, "0.0.0.0");
    assert.equal(allowed.devPublic, true);
    assert.equal(loadConfig({ HOST: "::", HERALD_DEV_PUBLIC: "1" }).host, "::");
    for (const host of ["127.0.0.1", "127.0.0.2", "localhost", "::1"])
      assert.equal(loadConfig({ HOST: host }).host, host);
    const jwt = loadConfig({ HOST: "0.0.0.0", HERALD_AUTH: "jwt", HERALD_JWT_SECRET: SECRET_32 });
    assert.equal(jwt.host, "0.0.0.0");
  });

  it("the server on 0.0.0.0 with HERALD_DEV_PUBLIC=1 starts with a WARNING; without it, exits non-zero", async () => {
    const dataDir = tempDir();
    try {
      const refusedRun = runMain({ HOST: "0.0.0.0", HERALD_DATA_DIR: dataDir });
      const code = await refusedRun.exit(20000, /listening on/);
      assert.notEqual(code, 0, refusedRun.output());
      assert.notEqual(code, null, refusedRun.output());
      assert.match(refusedRun.output(), /HOST=0\.0\.0\.0/);
      assert.match(refusedRun.output(), /HERALD_DEV_PUBLIC/);
      assert.doesNotMatch(refusedRun.output(), /listening on/);

      const run = runMain({ HOST: "0.0.0.0", HERALD_DEV_PUBLIC: "1", HERALD_DATA_DIR: dataDir });
      try {
        const match = await run.waitFor(/listening on http:\/\/[^\s:]+:(\d+)/);
        await run.waitFor(/WARNING/, 3000);
        assert.match(run.output(), /WARNING: HERALD_AUTH=dev on 0\.0\.0\.0/);
        // Reached over loopback only.
        const url = `http://127.0.0.1:${match[1]}`;
        assert.equal((await http(`${url}/healthz`)).status, 200);
        const s = await connect(url, { user: "alice", clientId: "pub1" });
        await sub(s, "room:pub");
        s.close();
      } finally {
        run.child.kill("SIGTERM");
        await run.exit(10000);
      }
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe("security: HERALD_ADMINS in dev auth", { timeout: 30000 }, () => {
  let server: TestServer;
  const open: RawSocket[] = [];
  before(async () => {
    server = await startServer({ admins: ["root"] });
  });
  after(async () => {
    for (const s of open) s.close();
    await server.close();
  });

  it("reads the comma-separated list and refuses a name that is no user id", () => {
    assert.deepEqual(loadConfig({ HERALD_ADMINS: "root, ops" }).admins, ["root", "ops"]);
    assert.equal(loadConfig({}).admins, undefined);
    assert.match(configProblems({ HERALD_ADMINS: "root,bad user" }), /HERALD_ADMINS/);
  });

  it("only the named users may publish to broadcast and read the stats", async () => {
    const alice = await connect(server.url, { user: "alice", clientId: "adm1" });
    const root = await connect(server.url, { user: "root", clientId: "adm2" });
    open.push(alice, root);
    await fails(call(alice, "publish", { id: "b1", topic: "broadcast", payload: 1 }), "FORBIDDEN");
    assert.equal(await pub(root, "broadcast", "b2"), 1);
    httpError(await http(`${server.url}/api/v1/stats`, { user: "alice" }), 403, "FORBIDDEN");
    const stats = await http(`${server.url}/api/v1/stats`, { user: "root" });
    assert.equal(stats.status, 200, stats.text);
    assert.equal(typeof (stats.body as { connections?: unknown }).connections, "number");
    const publish = (user: string) =>
      http(`${server.url}/api/v1/publish`, {
        method: "POST",
        user,
        body: JSON.stringify({ id: `h-${user}`, topic: "broadcast", payload: 1 }),
      });
    httpError(await publish("alice"), 403, "FORBIDDEN");
    assert.equal((await publish("root")).status, 200);
  });
});

describe("security: the JWT secret", () => {
  it("refuses a secret shorter than 32 bytes, counted in UTF-8", () => {
    for (const secret of ["x", "a".repeat(31), `${"é".repeat(15)}a`]) {
      assert.match(configProblems({ HERALD_AUTH: "jwt", HERALD_JWT_SECRET: secret }), /HERALD_JWT_SECRET/);
    }
    assert.throws(() => loadConfig({}, { auth: "jwt", jwtSecret: "short" }), ConfigError);
    assert.equal(loadConfig({ HERALD_AUTH: "jwt", HERALD_JWT_SECRET: SECRET_32 }).jwtSecret, SECRET_32);
    assert.equal(loadConfig({ HERALD_AUTH: "jwt", HERALD_JWT_SECRET: "é".repeat(16) }).auth, "jwt");
  });
});

describe("security: /metrics", { timeout: 60000 }, () => {
  const TOKEN = "t0ken-for-the-scraper-9f2c";
  let server: TestServer;
  let plain: TestServer;
  const open: RawSocket[] = [];
  before(async () => {
    server = await startServer({ metricsToken: TOKEN });
    plain = await startServer();
  });
  after(async () => {
    for (const s of open) s.close();
    await server.close();
    await plain.close();
  });

  it("needs Authorization: Bearer <HERALD_METRICS_TOKEN> when it is set", async () => {
    const metrics = (authorization?: string) =>
      http(`${server.url}/metrics`, authorization === undefined ? {} : { headers: { authorization } });
    for (const wrong of [undefined, "Bearer wrong", `Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(1)}`, `Basic ${TOKEN}`]) {
      const res = await metrics(wrong);
      httpError(res, 401, "UNAUTHORIZED");
      assert.doesNotMatch(res.text, /herald_/, "no metric leaks into the refusal");
    }
    const res = await metrics(`Bearer ${TOKEN}`);
    assert.equal(res.status, 200, res.text);
    assert.match(res.headers.get("content-type") ?? "", /^text\/plain/);
    assert.match(res.text, /^# HELP herald_/m);
    const unset = await http(`${plain.url}/metrics`);
    assert.equal(unset.status, 200);
    assert.match(unset.text, /^# HELP herald_/m);
  });

  it("has no topic, user or group label, however many inboxes, rooms and groups there are", async () => {
    const clients = await Promise.all(
      Array.from({ length: 50 }, (_, i) => connect(server.url, { user: `m${i}`, clientId: `m${i}` })),
    );
    open.push(...clients);
    await Promise.all(
      clients.map(async (s, i) => {
        await sub(s, `user:m${i}`);
        await sub(s, `room:metrics${i}`);
      }),
    );
    await ok(call(clients[0]!, "subscribe", { topic: "room:metrics0", group: "workers" }));
    await ok(call(clients[1]!, "subscribe", { topic: "room:metrics0", group: "workers" }));
    // A backlog and unacked messages: lag in a topic, a group and an inbox.
    for (let i = 0; i < 3; i++) {
      await pub(clients[2]!, "room:metrics0", `mx${i}`);
      await pub(clients[2]!, "user:m3", `my${i}`);
    }
    const res = await http(`${server.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(res.status, 200);
    const { text } = res;
    assert.doesNotMatch(text, /topic=/);
    assert.doesNotMatch(text, /group=/);
    assert.doesNotMatch(text, /user:/);
    assert.doesNotMatch(text, /room:/);
    assert.doesNotMatch(text, /herald_topic_lag/);
    // One series each, labelled with the node at most.
    assert.match(text, /^herald_group_backlog(\{node="[^"]*"\})? 3$/m);
    assert.match(text, /^herald_group_backlog_max(\{node="[^"]*"\})? 3$/m);
  });
});

describe("security: headers of the web app and the API", { timeout: 30000 }, () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(async () => server.close());

  it("sends a strict CSP, nosniff and no-referrer on every route", async () => {
    const hasWeb = fs.existsSync(path.join(ROOT, "web/dist/index.html"));
    const routes = ["/healthz", "/api/v1/nope", "/metrics", ...(hasWeb ? ["/", "/admin"] : [])];
    for (const route of routes) {
      const res = await http(`${server.url}${route}`);
      if (route === "/" || route === "/healthz" || route === "/admin") assert.equal(res.status, 200, route);
      const csp = res.headers.get("content-security-policy") ?? "";
      assert.match(csp, /frame-ancestors 'none'/, `${route}: ${csp}`);
      assert.match(csp, /script-src 'self'(;|$)/, `${route}: ${csp}`);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, `${route}: ${csp}`);
      assert.equal(res.headers.get("x-content-type-options"), "nosniff", route);
      assert.equal(res.headers.get("referrer-policy"), "no-referrer", route);
    }
  });
});

describe("security: lone surrogates", { timeout: 30000 }, () => {
  let server: TestServer;
  let alice: RawSocket;
  before(async () => {
    server = await startServer();
    alice = await connect(server.url, { user: "alice", clientId: "sur" });
  });
  after(async () => {
    alice.close();
    await server.close();
  });

  it("refuses a key or a method with a lone surrogate, and keeps a well-formed one exactly", async () => {
    let n = 0;
    for (const key of ["\ud800", "\ud801", "\udfff", "a\udc00b", "\udfff\ud800"]) {
      await fails(call(alice, "publish", { id: `s${n++}`, topic: "room:sur", payload: 1, key }), "BAD_REQUEST");
    }
    const none = await ok(call(alice, "history", { topic: "room:sur" }));
    assert.equal(none.head, 0);
    assert.deepEqual(none.messages, []);
    // A method too, refused by the argument check (whatever `request` itself would answer).
    const method = await fails(call(alice, "request", { to: "bob", method: "\ud800x" }), "BAD_REQUEST");
    assert.match(method.message, /method/);

    const good = "é😀";
    await ok(call(alice, "publish", { id: "good", topic: "room:sur", payload: 1, key: good }));
    const h = await ok(call(alice, "history", { topic: "room:sur" }));
    const messages = h.messages as Message[];
    assert.equal(messages.length, 1);
    assert.equal(messages[0]!.key, good);
  });

  it("refuses them over HTTP POST /api/v1/publish with 400 BAD_REQUEST", async () => {
    const publish = (body: string) => http(`${server.url}/api/v1/publish`, { method: "POST", user: "alice", body });
    // The JSON escape, as a client would send it: the body itself is valid UTF-8.
    for (const lone of ["\\ud800", "\\udfff", "x\\udbff"]) {
      const res = await publish(`{"id":"hs-${lone.slice(-4)}","topic":"room:sur-http","payload":1,"key":"${lone}"}`);
      httpError(res, 400, "BAD_REQUEST");
    }
    const history = await http(`${server.url}/api/v1/topics/room:sur-http/messages`, { user: "alice" });
    assert.deepEqual(history.body, { messages: [], head: 0 });
    const res = await publish(`{"id":"hs-good","topic":"room:sur-http","payload":1,"key":"\\u00e9\\ud83d\\ude00"}`);
    assert.equal(res.status, 200, res.text);
    const after = await http(`${server.url}/api/v1/topics/room:sur-http/messages`, { user: "alice" });
    assert.equal((after.body as { messages: Message[] }).messages[0]!.key, "é😀");
  });
});

describe("security: presence across REPLACED hand-overs", { timeout: 60000 }, () => {
  let server: TestServer;
  const open: RawSocket[] = [];
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    for (const s of open) s.close();
    await server.close();
  });

  it("a storm of concurrent connects of one clientId emits no presence; the last close emits one offline", async () => {
    const watcher = await connect(server.url, { user: "w", clientId: "w1" });
    open.push(watcher);
    const seen: unknown[] = [];
    watcher.on("presence", (event) => seen.push(event));
    await sub(watcher, "room:p");
    const x = await connect(server.url, { user: "x", clientId: "x1" });
    open.push(x);
    await sub(x, "room:p");
    await eventually(() => seen.length === 1, "x online");
    assert.deepEqual(seen.splice(0), [{ topic: "room:p", user: "x", online: true }]);

    const sockets: RawSocket[] = [x];
    for (let round = 0; round < 10; round++) {
      const results = await Promise.allSettled(
        Array.from({ length: 30 }, () => connect(server.url, { user: "x", clientId: "x1" })),
      );
      for (const r of results) {
        if (r.status === "fulfilled") sockets.push(r.value);
        else assert.equal((r.reason as Error).message, "REPLACED");
      }
    }
    open.push(...sockets);
    await eventually(() => sockets.filter((s) => s.connected).length === 1, "one live socket of x1", 10000);
    await sleep(200);
    assert.deepEqual(seen, [], "no presence event for a hand-over");
    assert.deepEqual((await ok(call(watcher, "presence", { topic: "room:p" }))).users, ["w", "x"]);

    const last = sockets.find((s) => s.connected)!;
    assert.deepEqual((await ok(call(last, "presence", { topic: "room:p" }))).users, ["w", "x"]);
    last.close();
    await eventually(() => seen.length >= 1, "x offline");
    await sleep(200);
    assert.deepEqual(seen, [{ topic: "room:p", user: "x", online: false }]);
    assert.deepEqual((await ok(call(watcher, "presence", { topic: "room:p" }))).users, ["w"]);
  });
});

describe("security: HERALD_MAX_SUBSCRIPTIONS", { timeout: 30000 }, () => {
  let server: TestServer;
  let tight: TestServer;
  const open: RawSocket[] = [];
  const join = async (target: TestServer, user: string, clientId: string) => {
    const s = await connect(target.url, { user, clientId });
    open.push(s);
    return s;
  };
  before(async () => {
    server = await startServer({ maxSubscriptions: 5 });
    tight = await startServer({ maxSubscriptions: 2, rateLimit: 2 });
  });
  after(async () => {
    for (const s of open) s.close();
    await server.close();
    await tight.close();
  });

  it("counts plain subscriptions, group memberships and broadcast per user", async () => {
    const q1 = await join(server, "q", "q1");
    // broadcast is the first of the 5.
    for (let i = 1; i <= 4; i++) await sub(q1, `room:q${i}`);
    const err = await fails(call(q1, "subscribe", { topic: "room:q5" }), "LIMIT_EXCEEDED");
    assert.equal(err.retryAfterMs, undefined);
    await fails(call(q1, "subscribe", { topic: "user:q" }), "LIMIT_EXCEEDED");
    await fails(call(q1, "subscribe", { topic: "room:q1", group: "g" }), "LIMIT_EXCEEDED");
    // What exists is no new subscription: resubscribing, also with `from`, is ok.
    await sub(q1, "room:q1");
    await sub(q1, "room:q2", 1);
    // The refused ones left nothing behind.
    await ok(call(q1, "unsubscribe", { topic: "room:q5" }));
    await ok(call(q1, "unsubscribe", { topic: "room:q4" }));
    await ok(call(q1, "subscribe", { topic: "room:q1", group: "g" }));
    await ok(call(q1, "subscribe", { topic: "room:q1", group: "g" }));
    await fails(call(q1, "subscribe", { topic: "room:q5" }), "LIMIT_EXCEEDED");
    await ok(call(q1, "unsubscribe", { topic: "room:q1", group: "g" }));
    await sub(q1, "room:q5");

    // A second client of the same user shares the quota; its own broadcast is never refused.
    const q2 = await join(server, "q", "q2");
    await pub(q1, "room:q5", "q5-1");
    await fails(call(q2, "subscribe", { topic: "room:q6" }), "LIMIT_EXCEEDED");
    await fails(call(q2, "subscribe", { topic: "room:q5", group: "g" }), "LIMIT_EXCEEDED");
    // With q2's broadcast the user holds 6: two must go before q2 may take one.
    await ok(call(q1, "unsubscribe", { topic: "room:q5" }));
    await fails(call(q2, "subscribe", { topic: "room:q6" }), "LIMIT_EXCEEDED");
    await ok(call(q1, "unsubscribe", { topic: "room:q3" }));
    await sub(q2, "room:q6");
    await fails(call(q1, "subscribe", { topic: "room:q3" }), "LIMIT_EXCEEDED");

    // Another user has a quota of its own.
    const r = await join(server, "r", "r1");
    for (let i = 1; i <= 4; i++) await sub(r, `room:q${i}`);
    await fails(call(r, "subscribe", { topic: "room:q9" }), "LIMIT_EXCEEDED");
  });

  it("lets only one of two concurrent subscribes take the last place", async () => {
    const a = await join(server, "t", "t1");
    const b = await join(server, "t", "t2");
    // broadcast twice, then 2 rooms: 4 of 5.
    await sub(a, "room:t1");
    await sub(b, "room:t2");
    const replies = await Promise.all([
      call(a, "subscribe", { topic: "room:t3" }),
      call(b, "subscribe", { topic: "room:t4" }),
    ]);
    assert.deepEqual(replies.map((r) => r.ok).sort(), [false, true], JSON.stringify(replies));
    assert.equal(replies.find((r) => !r.ok)!.error!.code, "LIMIT_EXCEEDED");
  });

  it("takes no rate token for a refused subscribe", async () => {
    const s = await join(tight, "u", "u1");
    await sub(s, "room:u1"); // broadcast and this: the quota of 2; one of the 2 tokens left
    for (let i = 0; i < 10; i++) await fails(call(s, "subscribe", { topic: `room:u-x${i}` }), "LIMIT_EXCEEDED");
    await ok(call(s, "history", { topic: "room:u1" }));
    const err = await fails(call(s, "history", { topic: "room:u1" }), "RATE_LIMITED");
    assert.ok(err.retryAfterMs! > 0);
  });
});

describe("security: reads take rate tokens", { timeout: 30000 }, () => {
  const RATE = 5;
  let server: TestServer;
  const open: RawSocket[] = [];
  const join = async (user: string) => {
    const s = await connect(server.url, { user });
    open.push(s);
    return s;
  };
  before(async () => {
    server = await startServer({ rateLimit: RATE });
  });
  after(async () => {
    for (const s of open) s.close();
    await server.close();
  });

  /** RATE + 1 calls sent at once: RATE are answered ok, the last RATE_LIMITED with retryAfterMs. */
  async function burst(make: (i: number) => Promise<{ ok: boolean; error?: { code: string } }>) {
    const replies = await Promise.all(Array.from({ length: RATE + 1 }, (_, i) => make(i)));
    assert.deepEqual(
      replies.map((r) => (r.ok ? "ok" : r.error?.code)),
      [...Array(RATE).fill("ok"), "RATE_LIMITED"],
    );
    const last = replies[RATE] as { error: { retryAfterMs?: number } };
    assert.ok(last.error.retryAfterMs! > 0 && last.error.retryAfterMs! <= 1000 / RATE, JSON.stringify(last));
  }

  it("history", async () => {
    const s = await join("ra");
    await burst(() => call(s, "history", { topic: "room:ra" }));
  });

  it("presence", async () => {
    const s = await join("rb");
    await burst(() => call(s, "presence", { topic: "room:rb" }));
  });

  it("subscribe", async () => {
    const s = await join("rc");
    await burst((i) => call(s, "subscribe", { topic: `room:rc${i}` }));
  });

  it("refused reads take none", async () => {
    const s = await join("rd");
    for (let i = 0; i < 10; i++) {
      await fails(call(s, "history", { topic: "user:someone-else" }), "FORBIDDEN");
      await fails(call(s, "presence", { topic: "nope" }), "INVALID_TOPIC");
      await fails(call(s, "subscribe", { topic: "room:rd", bogus: 1 }), "BAD_REQUEST");
    }
    await burst(() => call(s, "history", { topic: "room:rd" }));
  });

  it("HTTP GET messages, one bucket per user", async () => {
    const get = (user: string) => http(`${server.url}/api/v1/topics/room:re/messages`, { user });
    const replies = await Promise.all(Array.from({ length: RATE + 1 }, () => get("re")));
    const statuses = replies.map((r) => r.status).sort();
    assert.deepEqual(statuses, [...Array(RATE).fill(200), 429], replies.map((r) => r.text).join("\n"));
    const limited = replies.find((r) => r.status === 429)!;
    const err = httpError(limited, 429, "RATE_LIMITED");
    assert.ok(err.retryAfterMs! > 0);
    assert.equal(limited.headers.get("retry-after"), "1");
    // Another user over HTTP, and the same user's socket, have buckets of their own.
    assert.equal((await get("rf")).status, 200);
    const s = await join("re");
    await ok(call(s, "history", { topic: "room:re" }));
  });
});

/** Sends `text` on a raw TCP connection and resolves with all the server wrote back before closing. */
function rawRequest(url: string, text: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname, () => socket.write(text));
    let got = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      got += chunk;
    });
    socket.on("end", () => resolve(got));
    socket.on("error", reject);
    socket.setTimeout(5000, () => {
      socket.destroy();
      reject(new Error(`no answer to ${text.split("\r\n")[0]}`));
    });
  });
}
