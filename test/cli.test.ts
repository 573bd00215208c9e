import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { HeraldClient, HeraldError } from "../shared/client/index.js";
import type { Message } from "../shared/protocol.js";
import { type CliRun, connect, type RawSocket, sleep, startCli, startServer, type TestServer } from "./helpers.js";

/** With the CLI's own defaults unset, so that each test says what it uses. */
const NO_DEFAULTS = { HERALD_URL: "", HERALD_USER: "", HERALD_TOKEN: "" };
const start = (args: string[]) => startCli(args, NO_DEFAULTS);
const run = (args: string[]): Promise<CliRun> => start(args).done;

/** Publishes to `topic` every `everyMs` until `done` settles (a command measuring rates); the count. */
async function publishUntil(
  done: Promise<unknown>,
  socket: RawSocket,
  topic: string,
  everyMs: number,
): Promise<number> {
  let running = true;
  void done.then(() => {
    running = false;
  });
  let published = 0;
  while (running) {
    published++;
    await socket.emitWithAck("publish", { id: `${topic.replace(":", "-")}-${published}`, topic, payload: published });
    await sleep(everyMs);
  }
  return published;
}

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, ms = 10000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe("cli - usage", () => {
  it("--help exits 0 on the top level and on each command", async () => {
    const runs = await Promise.all([
      run(["--help"]),
      run(["pub", "--help"]),
      run(["sub", "--help"]),
      run(["history", "--help"]),
      run(["serve", "--help"]),
      run(["request", "--help"]),
    ]);
    for (const [i, word] of [
      "Usage: herald COMMAND",
      "herald pub",
      "herald sub",
      "herald history",
      "herald serve",
      "herald request",
    ].entries()) {
      assert.equal(runs[i]!.code, 0, runs[i]!.stderr);
      assert.match(runs[i]!.stdout, new RegExp(word));
    }
    assert.match(runs[2]!.stdout, /--group NAME/);
  });

  it("an unknown command, a missing one, a bad flag and bad JSON exit 2 with a message", async () => {
    const [unknown, none, badFlag, badJson, badSeq] = await Promise.all([
      run(["frobnicate"]),
      run([]),
      run(["pub", "room:a", "1", "--bogus"]),
      run(["pub", "room:a", "{not json"]),
      run(["history", "room:a", "--limit", "ten"]),
    ]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command "frobnicate"/);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /Usage/);
    assert.equal(badFlag.code, 2);
    assert.match(badFlag.stderr, /bogus/);
    assert.equal(badJson.code, 2);
    assert.match(badJson.stderr, /not valid JSON/);
    assert.equal(badSeq.code, 2);
    assert.match(badSeq.stderr, /--limit/);
  });
});

describe("cli - against a live server", () => {
  let server: TestServer;
  let url: string;
  before(async () => {
    server = await startServer();
    url = server.url;
  });
  after(async () => {
    await server.close();
  });

  it("pub prints the reply, history shows the message, the same --id is a duplicate", async () => {
    const first = await run(["pub", "room:cli", '{"text":"hi"}', "--url", url, "--user", "alice", "--id", "cli-1"]);
    assert.equal(first.code, 0, first.stderr);
    const reply = JSON.parse(first.stdout) as { seq: number; ts: number; duplicate: boolean };
    assert.deepEqual(Object.keys(reply), ["seq", "ts", "duplicate"]);
    assert.equal(reply.seq, 1);
    assert.equal(reply.duplicate, false);
    const [again, hist] = await Promise.all([
      run(["pub", "room:cli", '{"text":"hi"}', "--url", url, "--user", "alice", "--id", "cli-1"]),
      run(["history", "room:cli", "--url", url, "--user", "bob"]),
    ]);
    assert.deepEqual(JSON.parse(again.stdout), { ...reply, duplicate: true });
    assert.equal(hist.code, 0, hist.stderr);
    const messages = hist.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Message);
    assert.deepEqual(
      messages.map((m) => [m.seq, m.id, m.from, m.payload]),
      [[1, "cli-1", "alice", { text: "hi" }]],
    );
  });

  it("request prints the responder's result; a refusal exits 1 with its code", async () => {
    const svc = new HeraldClient({
      url,
      clientId: "cli-svc",
      user: "pricing",
      socketOptions: { transports: ["websocket"] },
    });
    svc.onRequest("quote", (params) => ({ total: (params as { n: number }).n * 2 }));
    svc.onRequest("refuse", () => {
      throw new HeraldError("CONFLICT", "price changed");
    });
    svc.connect();
    try {
      await waitFor("the responder connected", () => svc.state === "connected");
      const [quote, refused, nobody, usage] = await Promise.all([
        run(["request", "pricing", "quote", '{"n":21}', "--url", url, "--user", "shop"]),
        run(["request", "pricing", "refuse", "--url", url, "--user", "shop"]),
        run(["request", "ghost", "x", "--url", url, "--user", "shop", "--timeout", "500"]),
        run(["request", "pricing", "--url", url]),
      ]);
      assert.equal(quote.code, 0, quote.stderr);
      assert.deepEqual(JSON.parse(quote.stdout), { total: 42 });
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /CONFLICT: price changed/);
      assert.equal(nobody.code, 1);
      assert.match(nobody.stderr, /UNAVAILABLE/);
      assert.equal(usage.code, 2);
      assert.match(usage.stderr, /expected USER METHOD \[JSON\]/);
    } finally {
      await svc.close();
    }
  });

  it("a server refusal exits 1 with its code on stderr", async () => {
    const [forbidden, invalid, unauthorized] = await Promise.all([
      run(["history", "user:bob", "--url", url, "--user", "alice"]),
      run(["pub", "nowhere", "1", "--url", url]),
      run(["pub", "room:a", "1", "--url", url, "--user", "not a user"]),
    ]);
    assert.equal(forbidden.code, 1);
    assert.match(forbidden.stderr, /FORBIDDEN/);
    assert.equal(invalid.code, 1);
    assert.match(invalid.stderr, /INVALID_TOPIC/);
    assert.equal(unauthorized.code, 1);
    assert.match(unauthorized.stderr, /BAD_REQUEST/);
  });

  it("sub prints one line per message and acks it; the same client id later gets nothing old", async () => {
    const topic = "room:subcli";
    for (const text of ["one", "two"]) {
      assert.equal((await run(["pub", topic, JSON.stringify(text), "--url", url, "--user", "alice"])).code, 0);
    }
    const clientArgs = ["--url", url, "--user", "carol", "--client-id", "cli-test-sub"];
    const first = start(["sub", topic, "--from", "1", ...clientArgs]);
    await waitFor("the replay", () => first.lines.length === 2);
    assert.equal((await run(["pub", topic, '"three"', "--url", url, "--user", "alice"])).code, 0);
    await waitFor("the live message", () => first.lines.length === 3);
    const printed = first.lines.map((l) => JSON.parse(l) as Message);
    assert.deepEqual(
      printed.map((m) => [m.topic, m.seq, m.payload]),
      [
        [topic, 1, "one"],
        [topic, 2, "two"],
        [topic, 3, "three"],
      ],
    );
    const acked = async () => {
      const subs = await server.herald.ctx.store.subscriptions({ user: "carol", clientId: "cli-test-sub" });
      return subs.find((s) => s.topic === topic)?.acked;
    };
    await waitFor("the ack of 3", async () => (await acked()) === 3);
    first.child.kill("SIGINT");
    const ended = await first.done;
    assert.equal(ended.code, 0, ended.stderr);

    assert.equal((await run(["pub", topic, '"four"', "--url", url, "--user", "alice"])).code, 0);
    const second = start(["sub", topic, ...clientArgs]);
    await waitFor("the new message", () => second.lines.length >= 1);
    await sleep(300);
    second.child.kill("SIGINT");
    const secondEnded = await second.done;
    assert.equal(secondEnded.code, 0, secondEnded.stderr);
    assert.deepEqual(
      second.lines.map((l) => (JSON.parse(l) as Message).seq),
      [4],
    );
    assert.equal(await acked(), 4);
  });
});

describe("cli - sub --group", () => {
  let server: TestServer;
  before(async () => {
    // A small window makes the server spread a burst over both members.
    server = await startServer({ maxInflight: 2 });
  });
  after(async () => {
    await server.close();
  });

  it("members share the messages, one line each with group and attempt; what was printed is acked", async () => {
    const topic = "room:cli-jobs";
    const url = server.url;
    const members: ReturnType<typeof start>[] = [];
    const member = (user: string) => {
      const m = start(["sub", topic, "--group", "workers", "--url", url, "--user", user]);
      members.push(m);
      return m;
    };
    const a = member("worker-a");
    const b = member("worker-b");
    const socket = await connect(url, { user: "shop" });
    try {
      // PROTOCOL: presence counts group members; both are in once both are listed.
      await waitFor("both members", async () => {
        const reply = await socket.emitWithAck("presence", { topic });
        return reply.ok && reply.users.length === 2;
      });
      const publish = (n: number) => socket.emitWithAck("publish", { id: `cli-job-${n}`, topic, payload: { job: n } });
      const N = 20;
      for (const reply of await Promise.all(Array.from({ length: N }, (_, i) => publish(i + 1)))) {
        assert.ok(reply.ok);
      }
      const printed = () => [...a.lines, ...b.lines].map((l) => JSON.parse(l) as Message);
      await waitFor(`${N} lines`, () => printed().length >= N);
      await sleep(300);
      assert.deepEqual(
        printed()
          .map((m) => m.seq)
          .sort((x, y) => x - y),
        Array.from({ length: N }, (_, i) => i + 1),
        "each message printed once, by one member",
      );
      assert.ok(a.lines.length > 0 && b.lines.length > 0, `both printed (${a.lines.length} and ${b.lines.length})`);
      for (const m of printed()) {
        assert.deepEqual([m.topic, m.group, m.attempt, m.payload], [topic, "workers", 1, { job: m.seq }]);
      }

      // One member stops: the other takes everything; a new member gets nothing already printed.
      a.child.kill("SIGINT");
      const ended = await a.done;
      assert.equal(ended.code, 0, ended.stderr);
      const before = b.lines.length;
      assert.ok((await publish(N + 1)).ok);
      await waitFor("the next message on the other member", () => b.lines.length === before + 1);
      b.child.kill("SIGINT");
      assert.equal((await b.done).code, 0);
      const c = member("worker-c");
      await waitFor("the new member", async () => {
        const reply = await socket.emitWithAck("presence", { topic });
        return reply.ok && reply.users.includes("worker-c");
      });
      assert.ok((await publish(N + 2)).ok);
      await waitFor("the new member's line", () => c.lines.length >= 1);
      await sleep(300);
      c.child.kill("SIGINT");
      assert.equal((await c.done).code, 0);
      assert.deepEqual(
        c.lines.map((l) => (JSON.parse(l) as Message).seq),
        [N + 2],
      );
    } finally {
      socket.close();
      for (const m of members) m.child.kill("SIGKILL");
    }
  });
});

describe("cli - stats and dead", () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ ackTimeoutMs: 100, maxDeliveries: 1 });
  });
  after(async () => {
    await server.close();
  });

  it("stats shows each topic's rate, and lag, oldest unacked age and liveness of subscriptions and groups", async () => {
    const url = server.url;
    const reader = await connect(url, { user: "reader", clientId: "st-r" });
    const worker = await connect(url, { user: "worker", clientId: "st-w" });
    const pubber = await connect(url, { user: "shop", clientId: "st-p" });
    try {
      await reader.emitWithAck("subscribe", { topic: "room:st" });
      await worker.emitWithAck("subscribe", { topic: "room:st", group: "g" });
      // Publishing about 50 a second all the while the command measures (it takes a moment to start).
      const stats = start(["stats", "--json", "--interval", "1000", "--url", url, "--user", "admin"]);
      const published = await publishUntil(stats.done, pubber, "room:st", 20);
      const { code, stdout, stderr } = await stats.done;
      assert.equal(code, 0, stderr);
      const report = JSON.parse(stdout) as {
        topics: { topic: string; head: number; perSecond: number }[];
        subscriptions: { topic: string; user: string; lag: number; oldestUnackedMs?: number; live: boolean }[];
        groups: { topic: string; group: string; lag: number; members: number; oldestUnackedMs?: number }[];
      };
      const topic = report.topics.find((t) => t.topic === "room:st")!;
      assert.ok(topic.head > 0 && topic.head <= published);
      assert.ok(topic.perSecond >= 10 && topic.perSecond <= 60, `rate ${topic.perSecond}`);
      const sub = report.subscriptions.find((s) => s.topic === "room:st" && s.user === "reader")!;
      assert.equal(sub.lag, topic.head, "nothing acked");
      assert.equal(sub.live, true);
      assert.ok(sub.oldestUnackedMs! >= 0 && sub.oldestUnackedMs! < 5000);
      const group = report.groups.find((g) => g.group === "g")!;
      assert.deepEqual([group.topic, group.members], ["room:st", 1]);
      const text = await run(["stats", "--interval", "10", "--url", url, "--user", "admin"]);
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /room:st\s+\d+/);
      assert.match(text.stdout, /oldest unacked/);
    } finally {
      reader.close();
      worker.close();
      pubber.close();
    }
  });

  it("top redraws the live view: rates and latency from /metrics, the busiest topics and groups", async () => {
    const url = server.url;
    const worker = await connect(url, { user: "worker", clientId: "tp-w" });
    const pubber = await connect(url, { user: "shop", clientId: "tp-p" });
    try {
      await worker.emitWithAck("subscribe", { topic: "room:tp", group: "tg" });
      const top = start(["top", "--frames", "2", "--interval", "500", "--url", url, "--user", "admin"]);
      await publishUntil(top.done, pubber, "room:tp", 10);
      const { code, stdout, stderr } = await top.done;
      assert.equal(code, 0, stderr);
      const frames = stdout.split(/^(?=\d+ publishes\/s)/m).filter((f) => f.trim() !== "");
      assert.equal(frames.length, 2, stdout);
      const last = frames[1]!;
      const rate = Number(/^(\d+) publishes\/s/.exec(last)![1]);
      assert.ok(rate >= 10 && rate <= 150, `publish rate ${rate}`);
      assert.match(last, /publish to durable p50 \d+\.\d+ ms, p99 \d+\.\d+ ms/);
      assert.match(last, /\d+ connections/);
      assert.match(last, /room:tp\s+\d+/);
      assert.match(last, /tg\s+room:tp\s+\d+/);
      const usage = await run(["top", "--frames", "0", "--url", url]);
      assert.equal(usage.code, 2, "--frames must be at least 1");
    } finally {
      worker.close();
      pubber.close();
    }
  });

  it("dead lists a group's dead letters and --retry hands them back", async () => {
    const url = server.url;
    const worker = await connect(url, { user: "worker", clientId: "dl-w" });
    const pubber = await connect(url, { user: "shop", clientId: "dl-p" });
    try {
      await worker.emitWithAck("subscribe", { topic: "room:dl", group: "g" });
      for (let i = 1; i <= 3; i++) await pubber.emitWithAck("publish", { id: `dl-${i}`, topic: "room:dl", payload: i });
      // Never acked: one attempt each (maxDeliveries 1), then dead after the 100 ms ack timeout.
      await waitFor("3 dead letters", async () => {
        const reply = await pubber.emitWithAck("history", { topic: "dead:room:dl:g" });
        return reply.ok && reply.messages.length === 3;
      });
      const listed = await run(["dead", "room:dl", "g", "--url", url, "--user", "admin"]);
      assert.equal(listed.code, 0, listed.stderr);
      const letters = listed.stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as Message);
      assert.deepEqual(
        letters.map((m) => [m.id, m.payload]),
        [
          ["dl-1", 1],
          ["dl-2", 2],
          ["dl-3", 3],
        ],
      );
      const retried = await run(["dead", "room:dl", "g", "--retry", "--url", url, "--user", "admin"]);
      assert.equal(retried.code, 0, retried.stderr);
      assert.deepEqual(JSON.parse(retried.stdout), { retried: 3 });
      const unknown = await run(["dead", "room:dl", "nogroup", "--retry", "--url", url, "--user", "admin"]);
      assert.equal(unknown.code, 1);
      assert.match(unknown.stderr, /NOT_FOUND/);
    } finally {
      worker.close();
      pubber.close();
    }
  });
});
