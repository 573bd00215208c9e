/**
 * The cluster (PROTOCOL.md "Running"): three real node processes on one PostgreSQL schema and one
 * Redis, behind no balancer, with clients spread over the nodes. Redis is a hint and PostgreSQL
 * the truth, so every test checks the same things whatever fails: one gapless order per topic that
 * every subscriber on every node sees, each message once, and every publish answered `ok` in the
 * log exactly once. Without PostgreSQL or Redis these tests fail: they do not skip.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import net from "node:net";
import { after, describe, it } from "node:test";
import pg from "pg";
import { HeraldClient } from "../shared/client/index.js";
import type { Message } from "../shared/protocol.js";
import {
  call,
  connectRecorded,
  disconnected,
  eventually,
  fails,
  metric,
  ok,
  record,
  send,
  sub,
} from "./conformance.js";
import {
  collect,
  connect,
  pgSchema,
  type RawSocket,
  REDIS_URL,
  type SpawnedServer,
  sleep,
  spawnServer,
  TEST_DATABASE_URL,
  tempDir,
} from "./helpers.js";
import { waitFor } from "./sdk-fixtures.js";

interface Cluster {
  nodes: SpawnedServer[];
  /** The schema's connection string, with an application_name that names this cluster's backends. */
  url: string;
  appName: string;
  close(): Promise<void>;
}

async function startCluster(size: number, redisUrl = REDIS_URL, env: Record<string, string> = {}): Promise<Cluster> {
  const schema = await pgSchema();
  const url = new URL(schema.url);
  url.searchParams.set("application_name", schema.name);
  const nodes = await Promise.all(
    Array.from({ length: size }, (_, i) =>
      spawnServer(tempDir(), {
        HERALD_STORE: "postgres",
        HERALD_DATABASE_URL: url.toString(),
        HERALD_REDIS_URL: redisUrl,
        HERALD_REDIS_PREFIX: schema.name,
        HERALD_NODE_ID: `node${i}`,
        ...env,
      }),
    ),
  );
  return {
    nodes,
    url: url.toString(),
    appName: schema.name,
    async close() {
      await Promise.all(nodes.map((n) => n.kill()));
      await schema.drop();
    },
  };
}

/**
 * Publishes every id to `topic` as a client that retries: windows of `window` publishes, each
 * unanswered or refused one sent again with its id, and on a lost connection the next node of
 * `urls`. Resolves with the seq each id got.
 */
async function publishAll(
  urls: string[],
  user: string,
  topic: string,
  ids: string[],
  options: { window?: number; onAcked?: (count: number) => void } = {},
): Promise<Map<string, number>> {
  const window = options.window ?? 10;
  const acked = new Map<string, number>();
  let node = 0;
  const end = Date.now() + 60_000;
  while (acked.size < ids.length) {
    if (Date.now() > end) throw new Error(`published ${acked.size} of ${ids.length}`);
    let socket: RawSocket;
    try {
      socket = await connect(urls[node % urls.length]!, { user, clientId: `${user}-publisher` });
    } catch {
      node++;
      await sleep(50);
      continue;
    }
    const pending = ids.filter((id) => !acked.has(id));
    for (let i = 0; i < pending.length && socket.connected; i += window) {
      const chunk = pending.slice(i, i + window);
      const replies = await Promise.all(
        chunk.map((id) =>
          socket
            .timeout(5000)
            .emitWithAck("publish", { id, topic, payload: { id } })
            .catch(() => undefined),
        ),
      );
      replies.forEach((reply, j) => {
        if (reply?.ok) acked.set(chunk[j]!, reply.seq);
      });
      options.onAcked?.(acked.size);
      if (replies.some((r) => !r?.ok)) await sleep(20); // a storage failure: retried next pass
    }
    if (!socket.connected) node++;
    socket.close();
  }
  return acked;
}

/** Every seq from 1 to `count` once, in order, and the ids those seqs got in the log. */
function assertOneOrder(messages: Message[], seqs: Map<string, number>, what: string): void {
  assert.deepEqual(
    messages.map((m) => m.seq),
    Array.from({ length: seqs.size }, (_, i) => i + 1),
    `${what}: every seq once, in order`,
  );
  for (const m of messages) assert.equal(seqs.get(m.id), m.seq, `${what}: ${m.id} has the seq its publisher got`);
}

/** One query on the cluster's schema, on a connection of its own. */
async function query<T extends pg.QueryResultRow>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

/** The log as PostgreSQL holds it: each id once, gapless. */
async function logOf(url: string, topic: string): Promise<{ id: string; seq: number }[]> {
  const rows = await query<{ id: string; seq: string }>(
    url,
    "SELECT id, seq FROM messages WHERE topic = $1 ORDER BY seq",
    [topic],
  );
  return rows.map((r) => ({ id: r.id, seq: Number(r.seq) }));
}

/** The ids of the half messages pending in the cluster's store. */
async function pendingIds(url: string): Promise<string[]> {
  return (await query<{ id: string }>(url, "SELECT id FROM txns WHERE committed_seq IS NULL")).map((r) => r.id);
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A Redis of the test's own, so that it can be killed and started again. */
async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    {
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let output = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start:\n${output}`)), 10_000);
    child.stdout!.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes("Ready to accept connections")) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("error", reject);
  });
  return child;
}

async function killRedis(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGKILL");
  await exited;
}

const ids = (prefix: string, n: number) =>
  Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(4, "0")}`);

describe("cluster: three nodes on PostgreSQL and Redis", () => {
  const open: { close(): Promise<void> }[] = [];
  after(async () => {
    for (const c of open.splice(0)) await c.close();
  });

  it("gives one order per topic, and every message to every subscriber on every node once", async () => {
    const cluster = await startCluster(3);
    open.push(cluster);
    const urls = cluster.nodes.map((n) => n.url);
    const subscribers = await Promise.all(urls.map((url, i) => connect(url, { user: `reader${i}` })));
    const inboxes = subscribers.map((s) => collect(s, { ack: true }));
    for (const s of subscribers) await sub(s, "room:one");
    // Two publishers on two nodes at once, contending for the topic's seqs.
    const [a, b] = await Promise.all([
      publishAll([urls[0]!], "ann", "room:one", ids("ann", 300)),
      publishAll([urls[1]!], "bob", "room:one", ids("bob", 300)),
    ]);
    const seqs = new Map([...a, ...b]);
    assert.equal(new Set(seqs.values()).size, 600, "600 distinct seqs");
    for (const [i, inbox] of inboxes.entries()) {
      await inbox.until(600);
      assertOneOrder(inbox.messages, seqs, `reader on node${i}`);
    }
    // Each publisher's messages keep its order (it sent each window after the last was answered).
    for (const mine of [a, b]) {
      const order = [...mine.values()];
      assert.deepEqual(
        order,
        [...order].sort((x, y) => x - y),
      );
    }
    // Nothing more comes: each was delivered once.
    await sleep(300);
    for (const inbox of inboxes) assert.equal(inbox.messages.length, 600);
    for (const s of subscribers) s.close();
  });

  it("a node SIGKILLed mid-stream: its clients go on through the others, nothing answered is lost or doubled", async () => {
    const cluster = await startCluster(3);
    open.push(cluster);
    const urls = cluster.nodes.map((n) => n.url);
    const watcher = await connect(urls[2]!, { user: "watcher" });
    const watched = collect(watcher, { ack: true });
    await sub(watcher, "room:kill");
    // A durable subscriber on the node that dies, with a clientId it keeps.
    const tom = await connect(urls[0]!, { user: "tom", clientId: "tom-1" });
    const tomBefore = collect(tom, { ack: true });
    await sub(tom, "room:kill");

    let killed = false;
    const published = publishAll([urls[0]!, urls[1]!], "pat", "room:kill", ids("pat", 400), {
      onAcked: (count) => {
        if (count >= 150 && !killed) {
          killed = true;
          void cluster.nodes[0]!.kill();
        }
      },
    });
    const seqs = await published;
    assert.ok(killed);
    // tom resumes on node1 from its acked cursor; what it got but had not acked comes again,
    // from the handshake on: recorded from before the connection.
    const { socket: tomAgain, rec: tomRec } = await connectRecorded(urls[1]!, { user: "tom", clientId: "tom-1" });
    const tomAfter = {
      get messages() {
        return tomRec.messages("room:kill");
      },
    };
    await eventually(
      async () => {
        const bySeq = new Set([...tomBefore.messages, ...tomAfter.messages].map((m) => m.seq));
        return bySeq.size === 400;
      },
      "tom has every seq, across the two nodes",
      15_000,
    );
    const resumedAt = tomAfter.messages[0]!.seq;
    assert.ok(resumedAt <= tomBefore.messages.length + 1, "resumed at or below what it had");
    assert.deepEqual(
      tomAfter.messages.map((m) => m.seq),
      Array.from({ length: 401 - resumedAt }, (_, i) => resumedAt + i),
      "in order from its cursor, once each",
    );

    await watched.until(400, 15_000);
    assertOneOrder(watched.messages, seqs, "the watcher on node2");
    const log = await logOf(cluster.url, "room:kill");
    assert.equal(log.length, 400, "each answered publish once in the log");
    assert.deepEqual(new Set(log.map((r) => r.id)), new Set(seqs.keys()));
    watcher.close();
    tomAgain.close();
  });

  it("Redis killed and started again mid-stream: delivery goes on through PostgreSQL, then Redis again", async () => {
    const port = await freePort();
    let redis = await startRedis(port);
    const cluster = await startCluster(2, `redis://127.0.0.1:${port}`);
    open.push(cluster, { close: () => killRedis(redis) });
    const urls = cluster.nodes.map((n) => n.url);
    const reader = await connect(urls[1]!, { user: "reader" });
    const inbox = collect(reader, { ack: true });
    await sub(reader, "room:redis");

    const first = await publishAll([urls[0]!], "pia", "room:redis", ids("a", 100));
    await inbox.until(100);
    await killRedis(redis);
    // Without Redis the reader's node learns of node0's messages from PostgreSQL.
    const second = await publishAll([urls[0]!], "pia", "room:redis", ids("b", 100));
    await inbox.until(200, 10_000);
    const metrics = await (await fetch(`${urls[1]}/metrics`)).text();
    assert.equal(metric(metrics, "herald_fanout_connected"), 0, "the node says Redis is away");
    redis = await startRedis(port);
    await eventually(
      async () => metric(await (await fetch(`${urls[1]}/metrics`)).text(), "herald_fanout_connected") === 1,
      "the node is back on Redis",
      15_000,
    );
    const third = await publishAll([urls[0]!], "pia", "room:redis", ids("c", 100));
    await inbox.until(300, 10_000);
    assertOneOrder(inbox.messages, new Map([...first, ...second, ...third]), "the reader on node1");
    await sleep(300);
    assert.equal(inbox.messages.length, 300, "each once");
    reader.close();
  });

  it("PostgreSQL's backends terminated mid-stream: refused publishes are retried, nothing answered is lost", async () => {
    const cluster = await startCluster(2);
    open.push(cluster);
    const urls = cluster.nodes.map((n) => n.url);
    const reader = await connect(urls[1]!, { user: "reader" });
    const inbox = collect(reader, { ack: true });
    await sub(reader, "room:pg");
    const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await admin.connect();
    let terminated = 0;
    const terminate = async () => {
      const { rows } = await admin.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
        [cluster.appName],
      );
      terminated += rows.length;
    };
    let kills = 0;
    const seqs = await publishAll([urls[0]!, urls[1]!], "pam", "room:pg", ids("pam", 400), {
      onAcked: (count) => {
        if (count >= 100 * (kills + 1) && kills < 3) {
          kills++;
          void terminate();
        }
      },
    });
    await admin.end();
    assert.ok(terminated > 0, "backends were terminated");
    await inbox.until(400, 15_000);
    assertOneOrder(inbox.messages, seqs, "the reader on node1");
    const log = await logOf(cluster.url, "room:pg");
    assert.deepEqual(
      log.map((r) => r.seq),
      Array.from({ length: 400 }, (_, i) => i + 1),
    );
    // The nodes still serve.
    const late = await connect(urls[0]!, { user: "late" });
    await ok(call(late, "publish", { id: "late-1", topic: "room:pg", payload: 1 }));
    late.close();
    reader.close();
  });

  it("presence, signals, direct messages and requests reach users on other nodes", async () => {
    const cluster = await startCluster(3);
    open.push(cluster);
    const urls = cluster.nodes.map((n) => n.url);
    const carol = await connect(urls[2]!, { user: "carol" });
    const carolSaw = record(carol);
    await sub(carol, "room:p");
    const alice = await connect(urls[0]!, { user: "alice" });
    const aliceSaw = record(alice);
    await sub(alice, "room:p");
    await sub(alice, "user:alice");
    const bob = await connect(urls[1]!, { user: "bob" });
    const bobSaw = record(bob);
    await sub(bob, "room:p");
    await eventually(() => carolSaw.of("presence").length === 2, "carol hears alice and bob come");
    assert.deepEqual(carolSaw.of("presence"), [
      { topic: "room:p", user: "alice", online: true },
      { topic: "room:p", user: "bob", online: true },
    ]);
    for (const s of [alice, bob, carol]) {
      await eventually(
        async () =>
          JSON.stringify((await call(s, "presence", { topic: "room:p" })).users) === '["alice","bob","carol"]',
        "every node knows all three",
      );
    }
    // A signal goes to the topic's subscribers on every node, not back to its sender.
    send(alice, "signal", { topic: "room:p", payload: { typing: true } });
    const signal = { topic: "room:p", from: "alice", payload: { typing: true } };
    await eventually(() => bobSaw.of("signal").length === 1 && carolSaw.of("signal").length === 1, "signals arrive");
    assert.deepEqual(bobSaw.of("signal"), [signal]);
    assert.deepEqual(carolSaw.of("signal"), [signal]);
    assert.deepEqual(aliceSaw.of("signal"), []);
    // A direct message to alice's inbox from bob's node.
    await ok(call(bob, "publish", { id: "dm-1", topic: "user:alice", payload: "hi" }));
    await eventually(() => aliceSaw.messages("user:alice").length === 1, "alice gets the direct message");
    // A request to a user on another node, its answer, a relayed error, and nobody to ask.
    bob.on("request", (event, answer) => {
      if (event.method === "add") answer({ result: (event.params as number[]).reduce((a, b) => a + b, 0) });
      else answer({ error: { code: "NO_SUCH_METHOD", message: event.method } });
    });
    assert.deepEqual(await call(alice, "request", { to: "bob", method: "add", params: [2, 3] }), {
      ok: true,
      result: 5,
    });
    await fails(call(alice, "request", { to: "bob", method: "mul" }), "NO_SUCH_METHOD");
    await fails(call(alice, "request", { to: "nobody", method: "add" }), "UNAVAILABLE");
    // bob's node goes down while a request waits on it: UNAVAILABLE, not a hang.
    bob.removeAllListeners("request");
    bob.on("request", () => {});
    const waiting = call(alice, "request", { to: "bob", method: "slow", timeoutMs: 20_000 });
    await sleep(200);
    await cluster.nodes[1]!.kill();
    await fails(waiting, "UNAVAILABLE");
    // ... and its users' presence ends with it.
    await eventually(
      () => carolSaw.of("presence").some((p) => JSON.stringify(p) === '{"topic":"room:p","user":"bob","online":false}'),
      "carol hears bob go with his node",
      10_000,
    );
    for (const s of [alice, carol]) s.close();
  });

  it("a client that connects to another node replaces its connection there, after every ack it sent", async () => {
    const cluster = await startCluster(2);
    open.push(cluster);
    const urls = cluster.nodes.map((n) => n.url);
    const watcher = await connect(urls[1]!, { user: "watcher" });
    const watcherSaw = record(watcher);
    await sub(watcher, "room:r");
    const tom = await connect(urls[0]!, { user: "tom", clientId: "tom-1" });
    const tomSaw = record(tom);
    const tomGot = collect(tom);
    await sub(tom, "room:r");
    await eventually(() => watcherSaw.of("presence").length === 1, "the watcher sees tom come");
    const pub = await connect(urls[1]!, { user: "pub" });
    for (let i = 1; i <= 10; i++) await ok(call(pub, "publish", { id: `r${i}`, topic: "room:r", payload: i }));
    await tomGot.until(10);
    // Acks that ask for no reply: kept in memory by node0 until it lets go of tom.
    send(tom, "ack", { topic: "room:r", seq: 10 });
    await sleep(20);
    const gone = disconnected(tom);
    // Recorded from before the connection: a resumed delivery may come with the handshake.
    const { socket: tomAgain, rec: againRec } = await connectRecorded(urls[1]!, { user: "tom", clientId: "tom-1" });
    await gone;
    assert.deepEqual(
      tomSaw.of("error").map((e) => (e as { code: string }).code),
      ["REPLACED"],
    );
    await ok(call(pub, "publish", { id: "r11", topic: "room:r", payload: 11 }));
    await eventually(() => againRec.messages("room:r").length >= 1, "r11 arrives");
    await sleep(200);
    assert.deepEqual(
      againRec.messages("room:r").map((m) => m.seq),
      [11],
      "resumed after the ack node0 received",
    );
    assert.deepEqual(
      watcherSaw.of("presence"),
      [{ topic: "room:r", user: "tom", online: true }],
      "no event for the hand-over",
    );
    assert.deepEqual((await call(watcher, "presence", { topic: "room:r" })).users, ["tom", "watcher"]);
    tomAgain.close();
    await eventually(() => watcherSaw.of("presence").length === 2, "then tom goes");
    for (const s of [watcher, pub]) s.close();
  });

  it("transactions: commit and roll back through any node, and txn-check reaches the producer on its node", async () => {
    const cluster = await startCluster(3, REDIS_URL, { HERALD_TXN_CHECK_MS: "300" });
    open.push(cluster);
    const urls = cluster.nodes.map((n) => n.url);
    const reader = await connect(urls[2]!, { user: "reader" });
    const inbox = collect(reader, { ack: true });
    await sub(reader, "room:tx");
    // Prepared on node0, which dies; committed through node1.
    const p = await connect(urls[0]!, { user: "pat", clientId: "pat-1" });
    p.on("txn-check", (_check, answer) => answer({ state: "unknown" }));
    assert.deepEqual(await call(p, "prepare", { id: "t1", topic: "room:tx", payload: 1 }), {
      ok: true,
      duplicate: false,
    });
    await cluster.nodes[0]!.kill();
    const p2 = await connect(urls[1]!, { user: "pat", clientId: "pat-1" });
    p2.on("txn-check", (_check, answer) => answer({ state: "unknown" }));
    const committed = await ok(call(p2, "commit", { id: "t1" }));
    assert.equal(committed.seq, 1);
    assert.deepEqual(await call(p2, "commit", { id: "t1" }), { ok: true, seq: 1, ts: committed.ts, duplicate: true });
    // Prepared on node1, rolled back through node2: node1's commit finds it gone.
    await ok(call(p2, "prepare", { id: "t2", topic: "room:tx", payload: 2 }));
    const p3 = await connect(urls[2]!, { user: "pat", clientId: "pat-2" });
    await ok(call(p3, "rollback", { id: "t2" }));
    await fails(call(p2, "commit", { id: "t2" }), "NOT_FOUND");
    // A producer that decides only when asked: the leader's txn-check finds it on its node.
    const q = await connect(urls[1]!, { user: "quin", clientId: "quin-1" });
    const asked: string[] = [];
    q.on("txn-check", (check, answer) => {
      asked.push(check.id);
      answer({ state: check.id === "t3" ? "commit" : "rollback" });
    });
    await ok(call(q, "prepare", { id: "t3", topic: "room:tx", payload: 3 }));
    await ok(call(q, "prepare", { id: "t4", topic: "room:tx", payload: 4 }));
    await inbox.until(2, 10_000);
    await eventually(() => asked.includes("t4"), "t4 asked about", 10_000);
    // The answer is on its way to the leader: once its rollback is in the store, a commit finds nothing.
    await eventually(async () => !(await pendingIds(cluster.url)).includes("t4"), "t4 rolled back", 10_000);
    await fails(call(q, "commit", { id: "t4" }), "NOT_FOUND");
    await sleep(700);
    assert.deepEqual(
      inbox.messages.map((m) => [m.seq, m.id]),
      [
        [1, "t1"],
        [2, "t3"],
      ],
      "the committed ones once each, the rolled-back ones never",
    );
    for (const s of [reader, p2, p3, q]) s.close();
  });

  it("the SDK given every node moves to another when its node dies, and handles each message once", async () => {
    const cluster = await startCluster(3);
    open.push(cluster);
    const urls = cluster.nodes.map((n) => n.url);
    const options = { socketOptions: { transports: ["websocket"] }, backoff: { baseMs: 50, capMs: 200 } };
    const reader = new HeraldClient({ url: urls, clientId: "sdk-reader", user: "reader", ...options });
    const writer = new HeraldClient({ url: [urls[1]!, urls[2]!], clientId: "sdk-writer", user: "writer", ...options });
    const got: number[] = [];
    reader.connect();
    writer.connect();
    await reader.subscribe("room:sdk", (m) => {
      got.push(m.seq);
    });
    assert.equal(reader.url, urls[0]);
    const results: Promise<unknown>[] = [];
    for (let i = 0; i < 200; i++) {
      results.push(writer.publish("room:sdk", i, { id: `sdk-${i}` }));
      if (i === 80) await cluster.nodes[0]!.kill(); // the reader's node
      if (i === 140) await cluster.nodes[1]!.kill(); // the writer's
      if (i % 20 === 0) await sleep(20);
    }
    const seqs = (await Promise.all(results)) as { seq: number }[];
    assert.equal(new Set(seqs.map((r) => r.seq)).size, 200, "each publish once");
    await waitFor("the reader has all 200", () => got.length >= 200, 20_000);
    await sleep(300);
    assert.deepEqual(
      got,
      Array.from({ length: 200 }, (_, i) => i + 1),
      "each once, in order, across the move",
    );
    assert.equal(reader.url, urls[2], "on the node that is left");
    await Promise.all([reader.close(), writer.close()]);
  });

  it("refuses consumer groups with UNAVAILABLE until they work across nodes", async () => {
    const cluster = await startCluster(2);
    open.push(cluster);
    const worker = await connect(cluster.nodes[0]!.url, { user: "worker" });
    await fails(call(worker, "subscribe", { topic: "room:jobs", group: "workers" }), "UNAVAILABLE");
    worker.close();
  });
});
