/**
 * The crash scenario: publishers that retry with the same id until answered, durable subscribers
 * that process each (topic, seq) once and ack after processing, members of a consumer group that
 * ack each message once processed, and a server that is SIGKILLed again and again mid-stream and
 * restarted on the same data dir and port. Afterwards it checks that every answered publish is in
 * the log exactly once, at the seq it was answered with, with gapless seqs, that every subscriber
 * processed every message exactly once, in order, and that the group finished every message and
 * never handed out again one whose ack was answered. Beside them a transactional producer
 * prepares, then commits or rolls back (answering `txn-check` from its own record), and a caller
 * makes remote calls to a responder: no committed message is lost, no rolled-back one is in the
 * log, and every request is answered exactly once, with its own result, or refused.
 * `test/crash.test.ts` runs a short version, `npm run chaos` a long one.
 *
 * With `nodes` > 1 it runs a cluster instead (`npm run chaos -- --cluster`): that many nodes on one
 * PostgreSQL schema and one Redis, the clients spread over them, and the nodes SIGKILLed in turn
 * while the others go on; the same checks hold across the nodes (consumer groups are left out
 * until they work across nodes).
 */
import net from "node:net";
import { io, type Socket } from "socket.io-client";
import type { ClientToServerEvents, Message, ServerToClientEvents } from "../../shared/protocol.js";
import { pgSchema, REDIS_URL, type SpawnedServer, sleep, spawnServer, tempDir } from "../helpers.js";

type Client = Socket<ServerToClientEvents, ClientToServerEvents>;

export interface ChaosOptions {
  kills: number;
  /** Messages per publisher. */
  messages: number;
  publishers?: number;
  subscribers?: number;
  /** Members of the consumer group "chaos" of every topic. */
  groupMembers?: number;
  topics?: string[];
  /** Publishes in flight per publisher. */
  window?: number;
  /** Transactions of the transactional producer (every third one rolled back). */
  transactions?: number;
  /** Remote calls of the caller. */
  requests?: number;
  /** Nodes of a cluster on PostgreSQL and Redis; 1 (the default) is one node on SQLite. */
  nodes?: number;
  log?: (line: string) => void;
}

export interface ChaosReport {
  published: number;
  kills: number;
  /** Per topic, the head after the run. */
  heads: Record<string, number>;
  /** Everything that went wrong; empty when every check held. */
  violations: string[];
  checks: string[];
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function client(url: string, user: string, clientId: string): Client {
  return io(url, {
    auth: { clientId, user },
    transports: ["websocket"],
    reconnectionDelay: 50,
    reconnectionDelayMax: 300,
    forceNew: true,
  });
}

type Reply = { ok: boolean; error?: { code: string }; [field: string]: unknown };

/** Sends `event` until the server answers anything but INTERNAL or RATE_LIMITED (a kill, a drop: retry). */
async function untilAnswered(socket: Client, event: string, args: object): Promise<Reply> {
  for (;;) {
    try {
      // Untyped: the events and their replies vary; `timeout` holds for the one emit that follows.
      const timed = socket.timeout(1500) as unknown as { emitWithAck(event: string, args: object): Promise<Reply> };
      const reply = await timed.emitWithAck(event, args);
      if (reply.ok || (reply.error?.code !== "INTERNAL" && reply.error?.code !== "RATE_LIMITED")) return reply;
    } catch {
      // A timeout: the server died or the socket dropped. The same call again is safe: its id says so.
    }
    await sleep(20);
  }
}

/** Publishes until the server answers, reusing the id on every retry so the server can dedup. */
async function publishUntilAnswered(
  socket: Client,
  args: { id: string; topic: string; payload: unknown; key: string },
): Promise<{ seq: number }> {
  const reply = await untilAnswered(socket, "publish", args);
  if (!reply.ok) throw new Error(`publish ${args.id} refused: ${reply.error?.code}`);
  return reply as unknown as { seq: number };
}

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const log = options.log ?? (() => {});
  const topics = options.topics ?? ["room:chaos-a", "room:chaos-b"];
  const publisherCount = options.publishers ?? 2;
  const subscriberCount = options.subscribers ?? 2;
  const nodeCount = options.nodes ?? 1;
  const memberCount = nodeCount > 1 ? 0 : (options.groupMembers ?? 2);
  const window = options.window ?? 16;
  const schema = nodeCount > 1 ? await pgSchema() : undefined;
  // Every kill fails the group's leases as an attempt; no message should die of the kills alone.
  // Checks come quickly, so that some land mid-stream; transactions are never rolled back by the
  // checks' count, as the producer answers every check of one it has decided.
  const env: Record<string, string> = {
    HERALD_MAX_DELIVERIES: "1000",
    HERALD_TXN_CHECK_MS: "300",
    HERALD_TXN_MAX_CHECKS: "1000",
  };
  if (schema) {
    Object.assign(env, {
      HERALD_STORE: "postgres",
      HERALD_DATABASE_URL: schema.url,
      HERALD_REDIS_URL: REDIS_URL,
      HERALD_REDIS_PREFIX: schema.name,
    });
  }
  // Each node keeps its port across restarts, so that its clients find it again.
  const dataDirs = Array.from({ length: nodeCount }, () => tempDir("herald-chaos-"));
  const ports = await Promise.all(dataDirs.map(() => freePort()));
  const spawn = (i: number) => spawnServer(dataDirs[i]!, { ...env, HERALD_NODE_ID: `node${i}` }, ports[i]);
  const nodes: SpawnedServer[] = await Promise.all(dataDirs.map((_, i) => spawn(i)));
  const urls = nodes.map((n) => n.url);
  /** The n-th client's node: spread over the cluster. */
  const at = (n: number) => urls[n % urls.length]!;
  const violations: string[] = [];

  // Durable subscribers, subscribed before anything is published so they must see every seq.
  const subscribers = await Promise.all(
    Array.from({ length: subscriberCount }, async (_, i) => {
      const socket = client(at(i), `sub${i}`, `sub${i}`);
      const last = new Map<string, number>(topics.map((t) => [t, 0]));
      const processed = new Map<string, string[]>(topics.map((t) => [t, []]));
      socket.on("messages", (batch: Message[]) => {
        for (const m of batch) {
          const seen = last.get(m.topic) ?? 0;
          if (m.seq <= seen) continue; // redelivered after a reconnect: already processed
          if (m.seq !== seen + 1) violations.push(`sub${i}: ${m.topic} jumped from ${seen} to ${m.seq}`);
          last.set(m.topic, m.seq);
          processed.get(m.topic)?.push(`${m.from}/${m.id}`);
        }
        const tail = new Map<string, number>();
        for (const m of batch) tail.set(m.topic, m.seq);
        for (const [topic, seq] of tail) socket.emit("ack", { topic, seq });
      });
      socket.on("gap", (gap) => violations.push(`sub${i}: unexpected gap ${JSON.stringify(gap)}`));
      await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
      for (const topic of topics) {
        const reply = await socket.emitWithAck("subscribe", { topic });
        if (!reply.ok || reply.acked !== 0)
          violations.push(`sub${i}: subscribe ${topic} answered ${JSON.stringify(reply)}`);
      }
      return { socket, last, processed };
    }),
  );

  // Group members: each acks every message once processed; an answered ack is durable, so that
  // message must never be handed out again. Joined before anything is published.
  const finished = new Set<string>();
  let groupProcessed = 0;
  const members = await Promise.all(
    Array.from({ length: memberCount }, async (_, i) => {
      const socket = client(at(i + 1), `member${i}`, `member${i}`);
      // Acks not answered when the server died: sent again on the next connection, as the SDK
      // does (the ack may have been kept, and then the message does not come again).
      const unanswered = new Map<string, { topic: string; seq: number }>();
      const ack = (key: string, topic: string, seq: number) => {
        unanswered.set(key, { topic, seq });
        socket
          .timeout(1500)
          .emitWithAck("ack", { topic, seq, group: "chaos" })
          .then(
            (reply) => {
              if (!reply.ok) return;
              finished.add(key);
              unanswered.delete(key);
            },
            () => {},
          );
      };
      socket.on("connect", () => {
        for (const [key, { topic, seq }] of unanswered) ack(key, topic, seq);
      });
      socket.on("messages", (batch: Message[]) => {
        for (const m of batch) {
          if (m.group === undefined) continue;
          const key = `${m.topic}#${m.seq}`;
          if (finished.has(key)) violations.push(`member${i}: ${key} handed out after its ack was answered`);
          groupProcessed++;
          ack(key, m.topic, m.seq);
        }
      });
      socket.on("gap", (gap) => violations.push(`member${i}: unexpected gap ${JSON.stringify(gap)}`));
      await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
      for (const topic of topics) {
        const reply = await socket.emitWithAck("subscribe", { topic, group: "chaos" });
        if (!reply.ok) violations.push(`member${i}: join ${topic} answered ${JSON.stringify(reply)}`);
      }
      return { socket };
    }),
  );

  // Publishers: each keeps `window` publishes in flight and retries each until it is answered.
  // They publish only what the kill loop has released, so that every kill lands mid-stream.
  const answered = new Map<string, { topic: string; seq: number }>();
  let released = 0;
  const publishers = Array.from({ length: publisherCount }, (_, p) => {
    const socket = client(at(p + 2), `pub${p}`, `pub${p}`);
    let next = 0;
    const worker = async () => {
      while (next < options.messages) {
        if (next >= released) {
          await sleep(5);
          continue;
        }
        const n = next++;
        const id = `p${p}-${n}`;
        const topic = topics[n % topics.length]!;
        const reply = await publishUntilAnswered(socket, { id, topic, payload: { p, n }, key: `k${n % 7}` });
        answered.set(`pub${p}/${id}`, { topic, seq: reply.seq });
      }
    };
    return { socket, done: Promise.all(Array.from({ length: window }, worker)) };
  });

  // The transactional producer: prepare, decide, then commit (or, every third, roll back), each
  // step retried with the same id until answered; txn-check is answered from its own record.
  const committed = new Map<string, { topic: string; seq: number }>();
  const rolledBack = new Set<string>();
  const decided = new Map<string, "commit" | "rollback">();
  const producer = client(at(1), "txn0", "txn0");
  producer.on("txn-check", (check, answer) => answer({ state: decided.get(check.id) ?? "unknown" }));
  const transacting = (async () => {
    for (let n = 0; n < (options.transactions ?? 0); n++) {
      while (n >= released * ((options.transactions ?? 0) / options.messages)) await sleep(5);
      const id = `t${n}`;
      const topic = topics[n % topics.length]!;
      const prepared = await untilAnswered(producer, "prepare", { id, topic, payload: { txn: n } });
      if (!prepared.ok) violations.push(`prepare ${id} refused: ${prepared.error?.code}`);
      const decision = n % 3 === 0 ? "rollback" : "commit";
      decided.set(id, decision);
      const reply = await untilAnswered(producer, decision, { id });
      if (!reply.ok) violations.push(`${decision} ${id} refused: ${reply.error?.code}`);
      else if (decision === "commit") committed.set(`txn0/${id}`, { topic, seq: reply.seq as number });
      else rolledBack.add(`txn0/${id}`);
    }
  })();

  // The caller and the responder: each request ends exactly once, with its own result or refused.
  const responder = client(at(0), "svc", "svc");
  responder.on("request", (event, answer) => answer({ result: event.params }));
  const caller = client(at(2), "caller", "caller");
  const outcomes = { ok: 0, refused: 0, lost: 0 };
  const calling = (async () => {
    for (let n = 0; n < (options.requests ?? 0); n++) {
      while (n >= released * ((options.requests ?? 0) / options.messages)) await sleep(5);
      let ends = 0;
      try {
        const reply = await caller
          .timeout(2000)
          .emitWithAck("request", { to: "svc", method: "echo", params: n, timeoutMs: 1000 });
        ends++;
        if (reply.ok && reply.result !== n) violations.push(`request ${n} got ${JSON.stringify(reply.result)}`);
        if (reply.ok) outcomes.ok++;
        else if (reply.error.code === "UNAVAILABLE" || reply.error.code === "TIMEOUT") outcomes.refused++;
        else violations.push(`request ${n} refused with ${reply.error.code}`);
      } catch {
        outcomes.lost++; // the server died with it: the caller knows it is not answered
      }
      if (ends > 1) violations.push(`request ${n} answered ${ends} times`);
    }
  })();

  const slice = Math.ceil(options.messages / (options.kills + 1));
  for (let k = 1; k <= options.kills; k++) {
    released = Math.min(options.messages, k * slice);
    // Kill once about half of this slice is answered: the rest is in flight or not yet sent.
    const target = publisherCount * (released - slice / 2);
    while (answered.size < target) await sleep(2);
    await sleep(Math.random() * 20);
    const victim = (k - 1) % nodes.length;
    await nodes[victim]!.kill();
    log(
      `kill ${k}/${options.kills}: SIGKILL${nodes.length > 1 ? ` of node${victim}` : ""} after ${answered.size} answered publishes`,
    );
    nodes[victim] = await spawn(victim);
  }
  released = options.messages;
  await Promise.all([...publishers.map((p) => p.done), transacting, calling]);
  log(`all ${answered.size} publishes answered`);
  for (const [key, where] of committed) answered.set(key, where);

  // Read the whole log back.
  const reader = client(at(0), "reader", "reader");
  await new Promise<void>((resolve) => reader.once("connect", () => resolve()));
  const heads: Record<string, number> = {};
  const logs = new Map<string, Message[]>();
  for (const topic of topics) {
    const all: Message[] = [];
    for (;;) {
      const reply = await reader.emitWithAck("history", { topic, after: all.length, limit: 500 });
      if (!reply.ok) throw new Error(`history failed: ${reply.error.code}`);
      heads[topic] = reply.head;
      if (reply.messages.length === 0) break;
      all.push(...reply.messages);
    }
    logs.set(topic, all);
  }

  // Wait for the subscribers to catch up with the heads.
  const deadline = Date.now() + 30000;
  const total = publisherCount * options.messages + committed.size;
  while (
    Date.now() < deadline &&
    (subscribers.some((s) => topics.some((t) => (s.last.get(t) ?? 0) < heads[t]!)) ||
      (memberCount > 0 && finished.size < total))
  ) {
    await sleep(50);
  }

  const checks: string[] = [];
  for (const [topic, all] of logs) {
    all.forEach((m, i) => {
      if (m.seq !== i + 1) violations.push(`${topic}: log has seq ${m.seq} at position ${i + 1}`);
    });
    if (all.length !== heads[topic]) violations.push(`${topic}: ${all.length} messages but head ${heads[topic]}`);
  }
  const inLog = new Map<string, { topic: string; seq: number }>();
  for (const [topic, all] of logs) {
    for (const m of all) {
      const key = `${m.from}/${m.id}`;
      if (inLog.has(key)) violations.push(`${key} is in the log twice`);
      inLog.set(key, { topic, seq: m.seq });
    }
  }
  if (answered.size !== total) violations.push(`${answered.size} of ${total} publishes and commits answered`);
  for (const [key, where] of answered) {
    const found = inLog.get(key);
    if (!found) violations.push(`answered ${key} (${where.topic}#${where.seq}) is not in the log`);
    else if (found.seq !== where.seq || found.topic !== where.topic) {
      violations.push(
        `answered ${key} as ${where.topic}#${where.seq} but the log has it at ${found.topic}#${found.seq}`,
      );
    }
  }
  if (inLog.size !== answered.size)
    violations.push(`the log holds ${inLog.size} messages for ${answered.size} publishes`);
  checks.push(`${answered.size} publishes answered; each is in the log once, at the seq it was answered with`);
  checks.push(`seqs gapless: ${topics.map((t) => `${t} 1..${heads[t]}`).join(", ")}`);
  for (const key of rolledBack) if (inLog.has(key)) violations.push(`rolled-back ${key} is in the log`);
  if (options.transactions) {
    checks.push(
      `${committed.size} committed transactions in the log at the seq their commit was answered with, none of the ${rolledBack.size} rolled back`,
    );
  }
  if (options.requests) {
    if (outcomes.ok + outcomes.refused + outcomes.lost !== options.requests) {
      violations.push(`${outcomes.ok + outcomes.refused + outcomes.lost} of ${options.requests} requests ended`);
    }
    checks.push(
      `${options.requests} requests each ended once: ${outcomes.ok} with their own result, ${outcomes.refused} UNAVAILABLE or TIMEOUT, ${outcomes.lost} cut off by a kill`,
    );
  }

  subscribers.forEach((s, i) => {
    for (const topic of topics) {
      const got = s.processed.get(topic) ?? [];
      const want = (logs.get(topic) ?? []).map((m) => `${m.from}/${m.id}`);
      if (got.length !== want.length || got.some((id, j) => id !== want[j])) {
        violations.push(`sub${i}: processed ${got.length} of ${want.length} on ${topic}, not the log's order`);
      }
    }
  });
  checks.push(`${subscriberCount} durable subscribers each processed every message exactly once, in seq order`);

  if (memberCount > 0) {
    for (const [topic, all] of logs) {
      for (const m of all)
        if (!finished.has(`${topic}#${m.seq}`)) violations.push(`the group never finished ${topic}#${m.seq}`);
    }
    checks.push(
      `${memberCount} group members finished all ${finished.size} messages (${groupProcessed - finished.size} handed out again after a kill); none came again after its ack was answered`,
    );
  }

  for (const s of [...subscribers, ...members, ...publishers]) s.socket.close();
  for (const socket of [producer, responder, caller]) socket.close();
  reader.close();
  const codes = await Promise.all(nodes.map((n) => n.stop()));
  codes.forEach((code, i) => {
    if (code !== 0) violations.push(`node${i} exited with ${code} on SIGTERM`);
  });
  checks.push(
    nodes.length > 1
      ? `all ${nodes.length} nodes stopped gracefully on SIGTERM`
      : "the server stopped gracefully on SIGTERM",
  );
  await schema?.drop();
  return { published: answered.size, kills: options.kills, heads, violations, checks };
}
