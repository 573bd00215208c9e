import assert from "node:assert/strict";
import fs from "node:fs";
import { after, before, describe, it } from "node:test";
import { GroupSubscription, type HeraldError, type Message } from "../shared/client/index.js";
import type { SubscriptionHost } from "../shared/client/subscription.js";
import type { GapEvent } from "../shared/protocol.js";
import type { AckArgs } from "../shared/schemas.js";
import { sleep, spawnServer, startServer, type TestServer, tempDir } from "./helpers.js";
import { sdkClients, waitFor } from "./sdk-fixtures.js";

const { client, closeAll } = sdkClients("grp");

/** A client stand-in that records what a subscription asks of it. */
function fakeHost() {
  const acks: AckArgs[] = [];
  const answers = new Map<number, () => void>();
  const errors: HeraldError[] = [];
  const gaps: GapEvent[] = [];
  const host: SubscriptionHost & { connected: boolean } = {
    connected: true,
    sendAck(args, answered) {
      if (!host.connected) return false;
      acks.push(args);
      if (answered) for (const seq of args.seqs ?? [args.seq!]) answers.set(seq, answered);
      return true;
    },
    gapProcessed: (gap) => void gaps.push(gap),
    handlerFailed: (err) => void errors.push(err),
    unsubscribe: async () => {},
  };
  return { host, acks, answers, errors, gaps };
}

const message = (seq: number, attempt = 1): Message => ({
  id: `m${seq}`,
  topic: "room:jobs",
  seq,
  from: "alice",
  ts: 1,
  payload: seq,
  group: "workers",
  attempt,
});

/** A handler whose calls wait until released, one by one. */
function gate() {
  const started: [seq: number, attempt: number | undefined][] = [];
  const waiting = new Map<number, { resolve(): void; reject(err: Error): void }>();
  return {
    started,
    running: () => waiting.size,
    handler: (m: Message) =>
      new Promise<void>((resolve, reject) => {
        started.push([m.seq, m.attempt]);
        waiting.set(m.seq, { resolve, reject });
      }),
    finish(seq: number) {
      waiting.get(seq)!.resolve();
      waiting.delete(seq);
    },
    fail(seq: number) {
      waiting.get(seq)!.reject(new Error(`job ${seq} failed`));
      waiting.delete(seq);
    },
  };
}

/** Lets the promise callbacks of a handler's end run, and the turn's batched ack go out after them. */
const settle = () => sleep(5);

/** The seqs acked, in the order they went out (an ack carries `seq` or, batched, `seqs`). */
const seqsOf = (acks: AckArgs[]) => acks.flatMap((a) => a.seqs ?? [a.seq!]);

async function groupStream(concurrency = 1) {
  const fake = fakeHost();
  const jobs = gate();
  const sub = new GroupSubscription("room:jobs", "workers", fake.host);
  const confirmed = sub.attach(jobs.handler, { concurrency, onGap: () => {} });
  sub.subscribed({ head: 0, acked: 0 }, false);
  await confirmed;
  return { ...fake, jobs, sub };
}

describe("sdk groups - the group stream's state machine", () => {
  it("acks each message by itself once its handler resolved, not cumulatively", async () => {
    const { sub, jobs, acks } = await groupStream(2);
    assert.deepEqual(sub.subscribeArgs(), { topic: "room:jobs", group: "workers" });
    for (const seq of [1, 2, 3]) sub.pushMessage(message(seq));
    assert.deepEqual(jobs.started, [
      [1, 1],
      [2, 1],
    ]);
    jobs.finish(2);
    await settle();
    assert.deepEqual(acks, [{ topic: "room:jobs", seq: 2, group: "workers" }], "2 is acked while 1 runs");
    assert.deepEqual(jobs.started.at(-1), [3, 1], "the freed worker takes the next message");
    assert.equal(jobs.running(), 2, "never more than `concurrency` at once");
    jobs.finish(1);
    jobs.finish(3);
    await settle();
    assert.deepEqual(seqsOf(acks), [2, 1, 3]);
  });

  it("batches the acks of one turn into one ack with seqs, and sends what waits at once when stopped", async () => {
    const { sub, jobs, acks } = await groupStream(3);
    for (const seq of [1, 2, 3]) sub.pushMessage(message(seq));
    jobs.finish(1);
    jobs.finish(3);
    await Promise.resolve();
    await Promise.resolve();
    assert.deepEqual(acks, [], "not yet: the turn's acks go together");
    await settle();
    assert.deepEqual(acks, [{ topic: "room:jobs", seqs: [1, 3], group: "workers" }]);
    jobs.finish(2);
    await Promise.resolve();
    await Promise.resolve();
    sub.stop("closed");
    assert.deepEqual(acks.at(-1), { topic: "room:jobs", seq: 2, group: "workers" }, "sent when the stream stops");
  });

  it("a handler that throws is reported and not acked; its redelivery is processed again, out of seq order", async () => {
    const { sub, jobs, acks, errors } = await groupStream();
    sub.pushMessage(message(1));
    sub.pushMessage(message(2));
    jobs.fail(1);
    await settle();
    assert.equal(acks.length, 0);
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.code, "INTERNAL");
    assert.match(errors[0]!.message, /room:jobs \(group workers\)/);
    jobs.finish(2);
    await settle();
    sub.pushMessage(message(1, 2));
    jobs.finish(1);
    await settle();
    assert.deepEqual(jobs.started, [
      [1, 1],
      [2, 1],
      [1, 2],
    ]);
    assert.deepEqual(seqsOf(acks), [2, 1]);
  });

  it("a copy of a queued or running message is dropped; a queued one takes the copy's newer attempt", async () => {
    const { sub, jobs, acks } = await groupStream();
    sub.pushMessage(message(1));
    sub.pushMessage(message(2));
    sub.pushMessage(message(1, 2)); // running
    sub.pushMessage(message(2, 2)); // queued
    jobs.finish(1);
    await settle();
    jobs.finish(2);
    await settle();
    assert.deepEqual(jobs.started, [
      [1, 1],
      [2, 2],
    ]);
    assert.deepEqual(seqsOf(acks), [1, 2]);
  });

  it("a copy of a finished message whose ack is unanswered is acked again, not processed", async () => {
    const { sub, jobs, acks, answers } = await groupStream();
    sub.pushMessage(message(1));
    jobs.finish(1);
    await settle();
    sub.pushMessage(message(1, 2));
    await settle();
    assert.deepEqual(jobs.started, [[1, 1]]);
    assert.deepEqual(seqsOf(acks), [1, 1]);
    // Once the server answered the ack, the message is done there; the record goes.
    answers.get(1)!();
    sub.pushMessage(message(1, 3)); // only a dead-letter retry could send it again now
    assert.deepEqual(jobs.started, [
      [1, 1],
      [1, 3],
    ]);
  });

  it("a disconnect drops what is queued and not begun; unanswered acks go out after the next subscribe reply", async () => {
    const { sub, jobs, acks, host } = await groupStream();
    sub.pushMessage(message(1));
    sub.pushMessage(message(2));
    sub.pushMessage(message(3));
    jobs.finish(1);
    await settle();
    assert.deepEqual(seqsOf(acks), [1]);
    host.connected = false;
    sub.connectionLost();
    assert.equal(sub.state, "subscribing");
    jobs.finish(2); // finished offline: its ack waits for a connection
    await settle();
    assert.deepEqual(
      jobs.started.map(([seq]) => seq),
      [1, 2],
      "3 was dropped: the server hands it to another member",
    );
    host.connected = true;
    sub.subscribed({ head: 3, acked: 0 }, false);
    assert.deepEqual(seqsOf(acks), [1, 1, 2], "both unanswered acks go out again");
    sub.pushMessage(message(3, 2));
    jobs.finish(3);
    await settle();
    assert.deepEqual(
      jobs.started.map(([seq]) => seq),
      [1, 2, 3],
    );
  });

  it("a gap goes to onGap and the gap event, and is never acked", async () => {
    const fake = fakeHost();
    const seen: string[] = [];
    const sub = new GroupSubscription("room:jobs", "workers", fake.host);
    void sub.attach((m) => void seen.push(`message ${m.seq}`), {
      onGap: (g) => void seen.push(`gap ${g.from}-${g.to} ${g.group}`),
    });
    sub.subscribed({ head: 0, acked: 0 }, false);
    sub.pushGap({ topic: "room:jobs", group: "workers", from: 1, to: 4 });
    sub.pushMessage(message(5));
    await settle();
    assert.deepEqual(seen, ["gap 1-4 workers", "message 5"]);
    assert.deepEqual(
      fake.gaps.map((g) => g.to),
      [4],
    );
    assert.deepEqual(seqsOf(fake.acks), [5]);
  });
});

describe("sdk groups - options", () => {
  it("concurrency above 1 needs a group; a second handler for the same stream is refused", async () => {
    const c = client("http://127.0.0.1:9");
    await assert.rejects(
      c.subscribe("room:a", () => {}, { concurrency: 2 }),
      { code: "BAD_REQUEST", message: /needs a group/ },
    );
    await assert.rejects(
      c.subscribe("room:a", () => {}, { group: "g", concurrency: 0 }),
      { code: "BAD_REQUEST" },
    );
    void c.subscribe("room:a", () => {}, { group: "g" }).catch(() => {});
    void c.subscribe("room:a", () => {}).catch(() => {}); // independent of the group's
    await assert.rejects(
      c.subscribe("room:a", () => {}, { group: "g" }),
      { code: "BAD_REQUEST", message: /room:a in group g/ },
    );
  });
});

describe("sdk groups - against a live server", () => {
  let server: TestServer;
  before(async () => {
    // A small window spreads messages over the members; a short ack timeout makes redelivery quick.
    server = await startServer({ maxInflight: 4, ackTimeoutMs: 400, maxDeliveries: 3 });
  });
  after(async () => {
    await server.close();
  });

  it("two members share the messages: each processed by one of them, all of them, each acked", async () => {
    const topic = "room:share";
    const a = client(server.url, { user: "bob" });
    const b = client(server.url, { user: "carol" });
    const pub = client(server.url);
    for (const c of [a, b, pub]) c.connect();
    const handled = new Map<string, Message[]>([
      ["a", []],
      ["b", []],
    ]);
    const work = (name: string) => async (m: Message) => {
      await sleep(2);
      handled.get(name)!.push(m);
    };
    const subA = await a.subscribe(topic, work("a"), { group: "workers" });
    await b.subscribe(topic, work("b"), { group: "workers" });
    assert.equal(subA.group, "workers");
    const N = 60;
    await Promise.all(Array.from({ length: N }, (_, i) => pub.publish(topic, { job: i + 1 })));
    const all = () => [...handled.get("a")!, ...handled.get("b")!];
    await waitFor(`${N} jobs`, () => all().length >= N);
    await sleep(1000); // longer than the ack timeout: an unacked one would come again
    const seqs = all()
      .map((m) => m.seq)
      .sort((x, y) => x - y);
    assert.deepEqual(
      seqs,
      Array.from({ length: N }, (_, i) => i + 1),
      "every message once, none twice",
    );
    assert.ok(handled.get("a")!.length > 0 && handled.get("b")!.length > 0, "both members got work");
    for (const m of all()) {
      assert.equal(m.group, "workers");
      assert.equal(m.attempt, 1);
      assert.equal(m.topic, topic);
      assert.deepEqual(m.payload, { job: m.seq });
    }
  });

  it("close() called from inside a handler waits for it and acks its message", async () => {
    const topic = "room:close-inside";
    const clientId = `closer${process.pid}`;
    const pub = client(server.url);
    pub.connect();
    const worker = client(server.url, { clientId, user: "bob" });
    worker.connect();
    let closing: Promise<void> | undefined;
    const handled: number[] = [];
    await worker.subscribe(
      topic,
      async (m) => {
        closing ??= worker.close(); // a worker told to stop after this job
        await sleep(50); // the job goes on after close() was called
        handled.push(m.seq);
      },
      { group: "stoppers" },
    );
    await pub.publish(topic, "the only job");
    await waitFor("close() to begin", () => closing !== undefined);
    await closing;
    assert.deepEqual(handled, [1], "the running job finished before close() resolved");
    const again = client(server.url, { clientId, user: "bob" });
    again.connect();
    const got: Message[] = [];
    await again.subscribe(topic, (m) => void got.push(m), { group: "stoppers" });
    await sleep(600); // past the ack timeout: an unacked job would be here
    assert.deepEqual(got, [], "its ack went out before the connection closed");
  });

  it("acks are per message: a member that comes back gets only the one it did not finish", async () => {
    // A server of its own whose ack timeout outlasts close()'s wait for the hanging handler, so
    // that seq 1 is handed on by the disconnect, not by a timeout while close() waits.
    const own = await startServer({ maxInflight: 4, ackTimeoutMs: 5000, maxDeliveries: 3 });
    const topic = "room:per-message";
    const clientId = `member${process.pid}`;
    const pub = client(own.url);
    pub.connect();
    const first = client(own.url, { clientId, user: "bob" });
    first.connect();
    const done: number[] = [];
    await first.subscribe(
      topic,
      async (m) => {
        if (m.seq === 1) await new Promise(() => {}); // hangs: never acked
        done.push(m.seq);
      },
      { group: "slow", concurrency: 2 },
    );
    for (let i = 1; i <= 5; i++) await pub.publish(topic, i);
    await waitFor("2..5 done", () => done.length === 4);
    await sleep(100); // the acks of 2..5 are answered
    await first.close();

    const again = client(own.url, { clientId, user: "bob" });
    again.connect();
    const got: Message[] = [];
    await again.subscribe(topic, (m) => void got.push(m), { group: "slow" });
    await waitFor("the unfinished one", () => got.length >= 1);
    await sleep(300);
    assert.deepEqual(
      got.map((m) => [m.seq, m.attempt]),
      [[1, 2]],
      "only seq 1 comes again, as its second attempt; 2..5 were acked while 1 was not",
    );
    await Promise.all([again.close(), pub.close()]);
    await own.close();
  });

  it("a handler that throws: no ack, an error event, then the message comes again with attempt 2", async () => {
    const topic = "room:flaky";
    const worker = client(server.url, { user: "bob" });
    const pub = client(server.url);
    worker.connect();
    pub.connect();
    const errors: HeraldError[] = [];
    worker.on("error", (err) => errors.push(err));
    const calls: [number, number | undefined][] = [];
    await worker.subscribe(
      topic,
      (m) => {
        calls.push([m.seq, m.attempt]);
        if (m.seq === 2 && m.attempt === 1) throw new Error("flaky");
      },
      { group: "workers" },
    );
    for (let i = 1; i <= 3; i++) await pub.publish(topic, i);
    await waitFor("the retry of 2", () => calls.length === 4, 5000);
    await sleep(1000);
    assert.deepEqual(
      calls.sort(([s1, a1], [s2, a2]) => s1 - s2 || a1! - a2!),
      [
        [1, 1],
        [2, 1],
        [2, 2],
        [3, 1],
      ],
    );
    assert.deepEqual(
      errors.map((e) => e.code),
      ["INTERNAL"],
    );
    assert.match(errors[0]!.message, /room:flaky \(group workers\)/);
  });

  it("a message that fails every attempt becomes a dead letter in dead:<topic>:<group>", async () => {
    const topic = "room:poison";
    const worker = client(server.url, { user: "bob" });
    worker.connect();
    worker.on("error", () => {});
    const attempts: number[] = [];
    await worker.subscribe(
      topic,
      (m) => {
        attempts.push(m.attempt!);
        throw new Error("poison");
      },
      { group: "workers" },
    );
    const dead: Message[] = [];
    await worker.subscribe(`dead:${topic}:workers`, (m) => void dead.push(m));
    const { seq } = await worker.publish(topic, { bad: true }, { id: "poison-1" });
    await waitFor("the dead letter", () => dead.length === 1, 6000);
    assert.deepEqual(attempts, [1, 2, 3], "HERALD_MAX_DELIVERIES attempts");
    assert.equal(seq, 1);
    const [letter] = dead;
    assert.deepEqual(
      [letter!.topic, letter!.seq, letter!.id, letter!.from, letter!.payload, letter!.group],
      [`dead:${topic}:workers`, 1, "poison-1", "bob", { bad: true }, undefined],
    );
  });

  it("a handler slower than the ack timeout runs once; its copy is dropped and its ack counts", async () => {
    const topic = "room:slowjob";
    const worker = client(server.url, { user: "bob" });
    worker.connect();
    const calls: number[] = [];
    await worker.subscribe(
      topic,
      async (m) => {
        calls.push(m.seq);
        if (m.seq === 1) await sleep(600); // past the 400 ms ack timeout, before the third attempt
      },
      { group: "workers" },
    );
    await worker.publish(topic, 1);
    await sleep(900);
    await worker.publish(topic, 2);
    await waitFor("2 handled", () => calls.includes(2));
    await sleep(900);
    assert.deepEqual(calls, [1, 2], "seq 1 handled once although it was handed out again");
  });

  it("a plain subscription and a group membership of one topic on one client are independent", async () => {
    const topic = "room:both";
    const c = client(server.url, { user: "bob" });
    const pub = client(server.url);
    c.connect();
    pub.connect();
    const plain: number[] = [];
    const grouped: number[] = [];
    await c.subscribe(topic, (m) => {
      assert.equal(m.group, undefined);
      plain.push(m.seq);
    });
    const membership = await c.subscribe(
      topic,
      (m) => {
        assert.equal(m.group, "workers");
        grouped.push(m.seq);
      },
      { group: "workers" },
    );
    for (let i = 1; i <= 10; i++) await pub.publish(topic, i);
    const ten = Array.from({ length: 10 }, (_, i) => i + 1);
    await waitFor("both streams", () => plain.length === 10 && grouped.length === 10);
    assert.deepEqual(plain, ten);
    assert.deepEqual(
      [...grouped].sort((x, y) => x - y),
      ten,
    );
    assert.deepEqual(await c.presence(topic), ["bob"]);

    await membership.unsubscribe();
    assert.equal(membership.state, "unsubscribed");
    await pub.publish(topic, 11);
    await waitFor("the plain stream goes on", () => plain.length === 11);
    await sleep(200);
    assert.equal(grouped.length, 10, "nothing for the group after unsubscribe");
  });
});

describe("sdk groups - server restart", () => {
  it("a lone member handles each message once across a SIGKILL: unanswered acks are sent again, not redone", async () => {
    const dataDir = tempDir();
    let server = await spawnServer(dataDir, { HERALD_DURABILITY: "normal" });
    const port = server.port;
    try {
      const topic = "room:crash-group";
      const worker = client(server.url, { clientId: `crashmember${process.pid}`, user: "bob" });
      const pub = client(server.url);
      worker.connect();
      pub.connect();
      const handled: Message[] = [];
      await worker.subscribe(
        topic,
        async (m) => {
          await sleep(2);
          handled.push(m);
        },
        { group: "workers", concurrency: 4 },
      );
      const ids = Array.from({ length: 80 }, (_, i) => `gcrash-${i}`);
      const replies = ids.map((id) => pub.publish(topic, id, { id }));
      await waitFor("some handled", () => handled.length >= 20);
      await server.kill();
      await waitFor("disconnected", () => worker.state !== "connected");
      server = await spawnServer(dataDir, { HERALD_DURABILITY: "normal" }, port);
      await Promise.all(replies);
      await waitFor("all 80 handled", () => new Set(handled.map((m) => m.seq)).size === 80, 15000);
      await sleep(500);
      const counts = new Map<number, number>();
      for (const m of handled) counts.set(m.seq, (counts.get(m.seq) ?? 0) + 1);
      assert.deepEqual(
        [...counts].filter(([, n]) => n > 1),
        [],
        "no message handled twice",
      );
      assert.deepEqual(handled.map((m) => m.id).sort(), [...ids].sort());
    } finally {
      await closeAll();
      await server.kill();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
