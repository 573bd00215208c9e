/**
 * Shared test fixtures: a real Herald on a loopback port with its SQLite store in a fresh temp dir,
 * in this process (`startServer`) or as a child process that a test may SIGKILL (`spawnServer`),
 * and a raw socket.io-client that knows only the wire protocol (`connect`).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { io, type Socket } from "socket.io-client";
import { type Config, loadConfig } from "../server/config.js";
import { createHerald, type Herald, type HeraldOptions } from "../server/herald.js";
import type { ClientToServerEvents, Message, ServerToClientEvents } from "../shared/protocol.js";

export type RawSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

export const ROOT = path.resolve(import.meta.dirname, "..");

export function tempDir(prefix = "herald-test-"): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** The Redis of this machine and of CI; tests keep apart by their own key prefix. */
export const REDIS_URL = process.env.HERALD_TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

/** The PostgreSQL of this machine and of CI (DEVELOPERS.md): trust auth, database `test`. */
export const TEST_DATABASE_URL = process.env.HERALD_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/**
 * A fresh schema for one test: `url` puts Herald's tables in it (the connection's search_path),
 * `drop` removes it with everything in it.
 */
export async function pgSchema(
  name = `herald_test_${process.pid}_${Math.random().toString(36).slice(2, 10)}`,
): Promise<{ name: string; url: string; drop(): Promise<void> }> {
  const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await admin.connect().catch((err: Error) => {
    throw new Error(`PostgreSQL is needed at ${TEST_DATABASE_URL} for this test: ${err.message}`);
  });
  await admin.query(`CREATE SCHEMA IF NOT EXISTS ${name}`);
  await admin.end();
  const url = new URL(TEST_DATABASE_URL);
  url.searchParams.set("options", `-c search_path=${name}`);
  return {
    name,
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: TEST_DATABASE_URL });
      await c.connect();
      await c.query(`DROP SCHEMA ${name} CASCADE`);
      await c.end();
    },
  };
}

export interface TestServer {
  url: string;
  herald: Herald;
  dataDir: string;
  close(): Promise<void>;
}

/**
 * `HERALD_TEST_STORE=postgres npm run test:unit` runs the in-process servers on PostgreSQL, each
 * in a schema of its own: the same protocol suites against the other store.
 */
const TEST_STORE = process.env.HERALD_TEST_STORE === "postgres" ? "postgres" : "sqlite";

export async function startServer(overrides: Partial<Config> = {}, options: HeraldOptions = {}): Promise<TestServer> {
  const dataDir = overrides.dataDir ?? tempDir();
  // A test that restarts a server on its data dir gets the same schema again (and leaves it).
  const schema =
    TEST_STORE === "postgres" && !overrides.store
      ? await pgSchema(
          overrides.dataDir
            ? `herald_test_dir_${createHash("sha1").update(dataDir).digest("hex").slice(0, 16)}`
            : undefined,
        )
      : undefined;
  const onPg = schema ? { store: "postgres" as const, databaseUrl: schema.url } : {};
  const config = loadConfig({}, { port: 0, host: "127.0.0.1", logLevel: "silent", ...onPg, ...overrides, dataDir });
  const herald = await createHerald(config, options);
  return {
    url: herald.url,
    herald,
    dataDir,
    async close() {
      await herald.close();
      if (!overrides.dataDir) await schema?.drop();
      if (!overrides.dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface ConnectOptions {
  clientId?: string;
  user?: string;
  token?: string;
  /** Whatever else to put in `auth`, to test bad handshakes. */
  auth?: Record<string, unknown>;
  reconnection?: boolean;
}

let nextClient = 0;

/** Connects a raw socket.io-client; rejects with the connect_error (its message is the error code). */
export function connect(url: string, options: ConnectOptions = {}): Promise<RawSocket> {
  const auth: Record<string, unknown> = options.auth ?? {
    clientId: options.clientId ?? `c${process.pid}x${nextClient++}`,
    ...(options.user === undefined ? {} : { user: options.user }),
    ...(options.token === undefined ? {} : { token: options.token }),
  };
  const socket: RawSocket = io(url, {
    auth,
    transports: ["websocket"],
    reconnection: options.reconnection ?? false,
    forceNew: true,
  });
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (err) => {
      socket.close();
      reject(err);
    });
  });
}

/** Resolves with the next `event` on the socket, or rejects after `ms`. */
export function nextEvent<T = unknown>(socket: RawSocket, event: string, ms = 5000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      (socket as unknown as Socket).off(event, on);
      reject(new Error(`no ${event} within ${ms} ms`));
    }, ms);
    const on = (value: T) => {
      clearTimeout(timer);
      resolve(value);
    };
    (socket as unknown as Socket).once(event, on);
  });
}

/**
 * Collects every delivered message of a socket. With `ack`, acks each batch's last seq per topic
 * once collected, as a client that processed them would.
 */
export function collect(socket: RawSocket, options: { ack?: boolean } = {}) {
  const messages: Message[] = [];
  const gaps: { topic: string; from: number; to: number }[] = [];
  const waiters: { count: number; resolve: () => void }[] = [];
  socket.on("messages", (batch) => {
    messages.push(...batch);
    if (options.ack) {
      const last = new Map<string, number>();
      for (const m of batch) last.set(m.topic, m.seq);
      for (const [topic, seq] of last) socket.emit("ack", { topic, seq });
    }
    for (const w of waiters.splice(0)) {
      if (messages.length >= w.count) w.resolve();
      else waiters.push(w);
    }
  });
  socket.on("gap", (gap) => gaps.push(gap));
  return {
    messages,
    gaps,
    /** Resolves once at least `count` messages are in. */
    until(count: number, ms = 10000): Promise<void> {
      if (messages.length >= count) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`got ${messages.length} of ${count} messages`)), ms);
        waiters.push({
          count,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
      });
    },
  };
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface SpawnedServer {
  url: string;
  port: number;
  child: ChildProcess;
  /** SIGKILL, and wait until the process is gone. */
  kill(): Promise<void>;
  /** SIGTERM, and the exit code. */
  stop(): Promise<number | null>;
}

/** Runs `server/main.ts` in a child process on the given data dir; `port` 0 takes a free one. */
export function spawnServer(dataDir: string, env: Record<string, string> = {}, port = 0): Promise<SpawnedServer> {
  const child = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "server/main.ts")], {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port), HERALD_DATA_DIR: dataDir, HERALD_LOG_LEVEL: "error", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${output}`)), 20000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening on (http:\/\/[^\s]+)/.exec(output);
      if (!match) return;
      clearTimeout(timer);
      const url = match[1]!;
      resolve({
        url,
        port: Number(new URL(url).port),
        child,
        async kill() {
          child.kill("SIGKILL");
          await exited;
        },
        async stop() {
          child.kill("SIGTERM");
          return exited;
        },
      });
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${output}`));
    });
  });
}

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * The `herald` command as bin/herald.js runs it, from source, with `env` over this process's
 * environment; `lines` holds stdout's lines so far, for a command that keeps running.
 */
export function startCli(
  args: string[],
  env: Record<string, string> = {},
): { child: ChildProcess; done: Promise<CliRun>; lines: string[] } {
  const child = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "server/cli/main.ts"), ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  const lines: string[] = [];
  child.stdout!.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
    lines.splice(0, lines.length, ...stdout.split("\n").filter((l) => l !== ""));
  });
  child.stderr!.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const done = new Promise<CliRun>((resolve) => child.once("exit", (code) => resolve({ code, stdout, stderr })));
  return { child, done, lines };
}
