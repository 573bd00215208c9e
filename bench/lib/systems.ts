/**
 * The systems under test and how each is started and loaded: Herald (`full`, `normal`, and on
 * PostgreSQL), the raw socket.io peer, the minimal SQLite and PostgreSQL peers, W9's socket.io
 * relay, aedes (each started here in its own process), and the Mosquitto, NATS and PostgreSQL
 * services already running on this machine (skipped with a note when unreachable).
 */
import net from "node:net";
import { pgSchema } from "../../test/helpers.js";
import type { Pace } from "../load/role.js";
import { type Durability, type ServerProc, servicePid, startHerald, startPeer } from "./proc.js";
import { GUARANTEE } from "./table.js";

export type Kind = "sio" | "mqtt" | "nats";

export interface Target {
  url: string;
  /** Processes whose CPU counts as the server's; empty when unknown. */
  pids: number[];
  stop(): Promise<void>;
}

export interface System {
  name: string;
  kind: Kind;
  guarantee: string;
  /** A target, or a string saying why this system is skipped. */
  start(options?: { cpuProfDir?: string; fsyncDelayUs?: number }): Promise<Target | string>;
}

export const MOSQUITTO_URL = "mqtt://127.0.0.1:1883";
export const NATS_URL = "127.0.0.1:4222";

function reachable(host: string, port: number, ms = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(ms, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

const fromProc = (p: ServerProc): Target => ({ url: p.url, pids: [p.pid], stop: () => p.stop() });

export const herald = (durability: Durability): System => ({
  name: `herald ${durability}`,
  kind: "sio",
  guarantee: durability === "full" ? GUARANTEE.fsync : GUARANTEE.pageCache,
  start: async (o = {}) =>
    fromProc(
      await startHerald({
        durability,
        ...(o.cpuProfDir ? { cpuProfDir: o.cpuProfDir } : {}),
        ...(o.fsyncDelayUs !== undefined ? { fsyncDelayUs: o.fsyncDelayUs } : {}),
      }),
    ),
});

/**
 * Herald on PostgreSQL (this machine's, 127.0.0.1:5432 database `test`), in a schema of its own
 * for the run. Server CPU is Herald's process: PostgreSQL's backends are not in it.
 */
export const heraldPg = (durability: Durability): System => ({
  name: `herald pg ${durability}`,
  kind: "sio",
  guarantee: durability === "full" ? GUARANTEE.pgCommit : "PostgreSQL COMMIT (synchronous_commit off)",
  start: async (o = {}) => {
    const schema = await benchSchema();
    if (typeof schema === "string") return schema;
    const p = await startHerald({
      durability,
      env: { HERALD_STORE: "postgres", HERALD_DATABASE_URL: schema.url },
      ...(o.cpuProfDir ? { cpuProfDir: o.cpuProfDir } : {}),
    });
    return { url: p.url, pids: [p.pid], stop: () => p.stop().then(schema.drop) };
  },
});

/** The minimal PostgreSQL writer (bench/peers/pg-min.ts): the limit for Herald on PostgreSQL. */
export const MIN_PG: System = {
  name: "minimal pg",
  kind: "sio",
  guarantee: GUARANTEE.pgCommit,
  start: async () => {
    const schema = await benchSchema();
    if (typeof schema === "string") return schema;
    const p = await startPeer("pg-min.ts", "minimal pg", { DATABASE_URL: schema.url });
    return { url: p.url, pids: [p.pid], stop: () => p.stop().then(schema.drop) };
  },
};

/**
 * Three Herald nodes on one PostgreSQL schema and this machine's Redis (a key prefix of their
 * own): the target's url lists them, and the load spreads its connections over them. Server CPU
 * is the three nodes'.
 */
export const HERALD_PG3: System = {
  name: "herald pg x3",
  kind: "sio",
  guarantee: GUARANTEE.pgCommit,
  start: async () => {
    const schema = await benchSchema();
    if (typeof schema === "string") return schema;
    if (!(await reachable("127.0.0.1", 6379))) return "Redis not reachable on 127.0.0.1:6379";
    const nodes = await Promise.all(
      [0, 1, 2].map((i) =>
        startHerald({
          durability: "full",
          env: {
            HERALD_STORE: "postgres",
            HERALD_DATABASE_URL: schema.url,
            HERALD_REDIS_URL: "redis://127.0.0.1:6379",
            HERALD_REDIS_PREFIX: schema.name,
            HERALD_NODE_ID: `bench-${i}`,
          },
        }),
      ),
    );
    return cluster(nodes, schema.drop);
  },
};

/** socket.io on three nodes joined by @socket.io/redis-streams-adapter (bench/peers/sio-redis.ts). */
export const SIO_REDIS3: System = {
  name: "socket.io redis-streams x3",
  kind: "sio",
  guarantee: GUARANTEE.memory,
  start: async () => {
    if (!(await reachable("127.0.0.1", 6379))) return "Redis not reachable on 127.0.0.1:6379";
    const stream = `bench-${Date.now().toString(36)}-${process.pid}`;
    const nodes = await Promise.all(
      [0, 1, 2].map(() => startPeer("sio-redis.ts", "socket.io redis-streams", { STREAM: stream })),
    );
    return cluster(nodes, async () => {});
  },
};

function cluster(nodes: ServerProc[], after: () => Promise<void>): Target {
  return {
    url: nodes.map((n) => n.url).join(","),
    pids: nodes.map((n) => n.pid),
    stop: async () => {
      await Promise.all(nodes.map((n) => n.stop()));
      await after();
    },
  };
}

/** A schema of its own for one system's run, or why PostgreSQL cannot be had. */
async function benchSchema(): Promise<{ name: string; url: string; drop(): Promise<void> } | string> {
  if (!(await reachable("127.0.0.1", 5432))) return "PostgreSQL not reachable on 127.0.0.1:5432";
  return pgSchema();
}

export const RAW: System = {
  name: "raw socket.io",
  kind: "sio",
  guarantee: GUARANTEE.memory,
  start: async () => fromProc(await startPeer("raw-sio.ts", "raw socket.io")),
};

export const MIN_SQLITE: System = {
  name: "minimal sqlite",
  kind: "sio",
  guarantee: GUARANTEE.fsync,
  start: async () => fromProc(await startPeer("sqlite-min.ts", "minimal sqlite")),
};

export const SIO_RELAY: System = {
  name: "socket.io relay",
  kind: "sio",
  guarantee: GUARANTEE.memory,
  start: async () => fromProc(await startPeer("sio-relay.ts", "socket.io relay")),
};

export const AEDES: System = {
  name: "aedes",
  kind: "mqtt",
  guarantee: GUARANTEE.memory,
  start: async () => fromProc(await startPeer("aedes.ts", "aedes")),
};

export const MOSQUITTO: System = {
  name: "mosquitto",
  kind: "mqtt",
  guarantee: GUARANTEE.mosquitto,
  start: async () => {
    if (!(await reachable("127.0.0.1", 1883))) return "not reachable on 127.0.0.1:1883";
    const pid = servicePid("mosquitto");
    return { url: MOSQUITTO_URL, pids: pid ? [pid] : [], stop: async () => {} };
  },
};

const natsServer = async (): Promise<Target | string> => {
  if (!(await reachable("127.0.0.1", 4222))) return "not reachable on 127.0.0.1:4222";
  const pid = servicePid("nats-server");
  return { url: NATS_URL, pids: pid ? [pid] : [], stop: async () => {} };
};

export const JETSTREAM: System = { name: "nats jetstream", kind: "nats", guarantee: GUARANTEE.nats, start: natsServer };

/** The same nats-server, core request/reply only (W9): nothing is stored. */
export const NATS_CORE: System = { name: "nats core", kind: "nats", guarantee: GUARANTEE.memory, start: natsServer };

let unique = 0;
/** Names that no earlier run used: MQTT sessions and NATS streams outlive a run. */
export function names(kind: Kind) {
  const tag = `${Date.now().toString(36)}${process.pid.toString(36)}${unique++}`;
  if (kind === "sio") return { topic: `room:bench-${tag}` };
  if (kind === "mqtt") return { topic: `bench/${tag}`, idPrefix: `bench-${tag}` };
  return { stream: `BENCH_${tag}`, subject: `bench.${tag}` };
}

export interface LoadSpec {
  role: string;
  opts: Record<string, unknown>;
}

type Names = ReturnType<typeof names>;

/**
 * Publishers with a window of `inflight` per connection (NATS: per process). `numbered`: MQTT
 * messages carry their number, for W7 to count each once (Herald and NATS number them by seq).
 */
export function pubSpec(
  kind: Kind,
  url: string,
  n: Names,
  o: { sockets: number; inflight: number; limit?: number; ids?: "uuid7" | "uuid4"; numbered?: boolean },
): LoadSpec {
  if (kind === "sio") return { role: "sio-pub", opts: { url, ...n, ...o } };
  if (kind === "mqtt") return { role: "mqtt-pub", opts: { url, ...n, ...o } };
  return { role: "nats-pub", opts: { servers: url, ...n, inflight: o.inflight * o.sockets, limit: o.limit } };
}

/**
 * Durable subscribers that ack; with `group`, W7's competing members instead, counting the
 * distinct messages 1..total they process: Herald's consumer group, joined when the load starts;
 * an MQTT shared subscription, subscribed at setup; the one durable consumer of a NATS work-queue
 * stream (created at setup), pulled from when the load starts.
 */
export function subSpec(
  kind: Kind,
  url: string,
  n: Names,
  o: { sockets: number; idOffset?: number; group?: string; total?: number },
): LoadSpec {
  const member = o.group !== undefined;
  if (kind === "sio") {
    const group = member ? { group: o.group, total: o.total, subscribe: "go" } : {};
    return { role: "sio-sub", opts: { url, ...n, sockets: o.sockets, ...group } };
  }
  if (kind === "mqtt") {
    const m = n as { topic: string; idPrefix: string };
    return {
      role: "mqtt-sub",
      opts: {
        url,
        topic: m.topic,
        idPrefix: `${m.idPrefix}-${o.idOffset ?? 0}`,
        sockets: o.sockets,
        ...(member ? { share: o.group, total: o.total } : {}),
      },
    };
  }
  const queue = member ? { workQueue: true, total: o.total } : {};
  return { role: "nats-sub", opts: { servers: url, ...n, consumers: o.sockets, ...queue } };
}

/** One paced publisher and one subscriber in one process. */
export function latencySpec(kind: Kind, url: string, n: Names, o: { rate: number; limit: number }): LoadSpec {
  if (kind === "sio") return { role: "sio-latency", opts: { url, ...n, ...o } };
  if (kind === "mqtt") return { role: "mqtt-latency", opts: { url, ...n, ...o } };
  return { role: "nats-latency", opts: { servers: url, ...n, ...o } };
}

/** W9's user that answers; the callers connect as the load's default user, so another one. */
const RESPONDER = "responder";

/** W9: a caller with a window of requests per connection or a fixed rate, and the responder it calls. */
export function requestSpecs(kind: Kind, url: string, n: Names, pace: Pace): { caller: LoadSpec; responder: LoadSpec } {
  if (kind === "sio") {
    return {
      // One caller connection, as NATS's one connection: the window is that connection's.
      caller: { role: "sio-requester", opts: { url, to: RESPONDER, sockets: 1, ...pace } },
      responder: { role: "sio-responder", opts: { url, user: RESPONDER } },
    };
  }
  if (kind === "nats") {
    const { subject } = n as { subject: string };
    return {
      caller: { role: "nats-requester", opts: { servers: url, subject, ...pace } },
      responder: { role: "nats-responder", opts: { servers: url, subject } },
    };
  }
  throw new Error(`no request/reply load for ${kind}`);
}
