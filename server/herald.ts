/**
 * One Herald server: the store, the socket.io hub and the HTTP API on one fastify server and port.
 * `createHerald` is what main.ts, the CLI's `serve` and the tests call.
 */
import Fastify from "fastify";
import { Server } from "socket.io";
import type { ClientToServerEvents, ServerToClientEvents } from "../shared/protocol.js";
import { Authenticator } from "./auth.js";
import { coalesceWrites } from "./coalesce.js";
import type { Config } from "./config.js";
import type { Context } from "./context.js";
import { Delivery } from "./delivery.js";
import { Groups } from "./groups.js";
import { registerHttp } from "./http.js";
import { Hub } from "./hub.js";
import { createLogger } from "./log.js";
import { Metrics } from "./metrics.js";
import { Presence } from "./presence.js";
import { Retention } from "./retention.js";
import { SqliteStore } from "./store/sqlite-store.js";

export interface Herald {
  /** `http://HOST:PORT` with the port actually bound. */
  url: string;
  port: number;
  ctx: Context;
  retention: Retention;
  /** Graceful stop: no new connections, finish and flush what is in flight, close the store, disconnect. */
  close(): Promise<void>;
}

export interface HeraldOptions {
  /** The clock of retention; tests pass their own. */
  now?: () => number;
}

export async function createHerald(config: Readonly<Config>, options: HeraldOptions = {}): Promise<Herald> {
  const log = createLogger(config.logLevel, config.nodeId);
  const store = new SqliteStore({
    dataDir: config.dataDir,
    durability: config.durability,
    ...(options.now ? { now: options.now } : {}),
  });
  const metrics = new Metrics(store, config.nodeId);
  const ctx: Context = {
    config,
    store,
    delivery: new Delivery(store, config.maxInflight, metrics, log.child({ module: "delivery" })),
    groups: new Groups(store, config, metrics, log.child({ module: "groups" })),
    presence: new Presence(),
    metrics,
    log,
  };
  await ctx.groups.load();
  const auth = new Authenticator(config);

  // PROTOCOL: the HTTP parser's limit is at least HERALD_MAX_PAYLOAD + 4 KiB.
  const app = Fastify({ bodyLimit: config.maxPayload + 16 * 1024, logger: false });
  const io = new Server<ClientToServerEvents, ServerToClientEvents>(app.server, {
    // PROTOCOL: at least 2 x HERALD_MAX_PAYLOAD + 64 KiB, so an oversized payload gets PAYLOAD_TOO_LARGE.
    maxHttpBufferSize: 2 * config.maxPayload + 64 * 1024,
    serveClient: false,
  });
  coalesceWrites(io);
  const hub = new Hub(ctx, io, auth);
  await registerHttp(app, { ctx, auth, connections: () => hub.connections });
  const retention = new Retention(ctx, (c) => hub.isLive(c), options.now);

  await app.listen({ port: config.port, host: config.host });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : config.port;
  retention.start();
  void retention.sweep();

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      retention.stop();
      app.server.close(); // no new connections
      hub.stop(); // no new events: what is in flight finishes below
      await store.close(); // everything queued is committed, flushed and answered
      io.disconnectSockets(true);
      await new Promise<void>((resolve) => io.close(() => resolve()));
      await app.close();
    })();
    return closing;
  };

  const host = config.host.includes(":") ? `[${config.host}]` : config.host;
  return { url: `http://${host}:${port}`, port, ctx, retention, close };
}
