/**
 * One Herald server: the store, the socket.io hub and the HTTP API on one fastify server and port.
 * `createHerald` is what main.ts, the CLI's `serve` and the tests call.
 */
import Fastify, { type FastifyReply } from "fastify";
import { Server } from "socket.io";
import type { ClientToServerEvents, ServerToClientEvents } from "../shared/protocol.js";
import { Authenticator } from "./auth.js";
import { Cluster } from "./cluster.js";
import { coalesceWrites } from "./coalesce.js";
import type { Config } from "./config.js";
import type { Context } from "./context.js";
import { Delivery } from "./delivery.js";
import { type Fanout, LocalFanout } from "./fanout.js";
import { Groups } from "./groups.js";
import { errorBody, registerHttp } from "./http.js";
import { Hub } from "./hub.js";
import { createLogger, type Logger } from "./log.js";
import { Metrics } from "./metrics.js";
import { OriginPolicy } from "./origin.js";
import { Peers } from "./peers.js";
import { Presence } from "./presence.js";
import { RedisFanout } from "./redis-fanout.js";
import { Requests } from "./requests.js";
import { Retention } from "./retention.js";
import { terminator } from "./send-buffer.js";
import { signalHere } from "./signal.js";
import { openStore } from "./store/open.js";
import { Transactions } from "./transactions.js";

export interface Herald {
  /** `http://HOST:PORT` with the port actually bound. */
  url: string;
  port: number;
  ctx: Context;
  retention: Retention;
  /** Graceful stop: no new connections, finish and flush what is in flight, close the store, disconnect. */
  close(): Promise<void>;
}

const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 15_000;
/** How long a stop waits for connections to finish their closing handshake. */
const CLOSE_GRACE_MS = 1000;

function clientErrorMessage(err: Error): string {
  switch ((err as { code?: string }).code) {
    case "HPE_HEADER_OVERFLOW":
      return "request headers too large";
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return `request not received within ${REQUEST_TIMEOUT_MS / 1000} s`;
    default:
      return "malformed HTTP request";
  }
}

export interface HeraldOptions {
  /** The clock of retention; tests pass their own. */
  now?: () => number;
  /** How durable messages reach delivery and groups; in-process unless a test brings a lossy one. */
  fanout?: Fanout;
}

/** The other nodes over Redis when HERALD_REDIS_URL is set (peers.ts); none on a node of its own. */
async function openPeers(config: Readonly<Config>, log: Logger): Promise<Peers | undefined> {
  if (!config.redisUrl) return undefined;
  const peers = new Peers({
    url: config.redisUrl,
    prefix: config.redisPrefix,
    name: config.nodeId,
    log: log.child({ module: "cluster" }),
  });
  await peers.start();
  return peers;
}

export async function createHerald(config: Readonly<Config>, options: HeraldOptions = {}): Promise<Herald> {
  const log = createLogger(config.logLevel, config.nodeId);
  const storeLog = log.child({ module: "store" });
  const store = await openStore(config, {
    // A failed checkpoint or a lost connection answers no request: the log is the only place it shows.
    onError: (message) => storeLog.error(message),
    ...(options.now ? { now: options.now } : {}),
  });
  const metrics = new Metrics(store, config.nodeId);
  const peers = await openPeers(config, log);
  // In-process alone; between the nodes over Redis in a cluster.
  const fanout =
    options.fanout ??
    (peers ? new RedisFanout(peers, { log: log.child({ module: "fanout" }), ...metrics.fanout() }) : new LocalFanout());
  store.onDurable((messages, durableAt) => fanout.publish(messages, durableAt));
  // Before delivery's and groups' listeners: a stream behind reads the run from memory.
  fanout.onMessages((messages) => store.remember(messages));
  const presence = new Presence();
  const groups = new Groups(fanout, store, config, metrics, log.child({ module: "groups" }));
  // The hub is made once the HTTP server is; transactions look sessions up only later.
  let made: Hub | undefined;
  const transactions = new Transactions(
    {
      store,
      groups,
      config,
      metrics,
      log: log.child({ module: "transactions" }),
      session: (user, clientId) => made?.session(user, clientId),
      newest: (user) => presence.newest(user),
    },
    options.now,
  );
  const ctx: Context = {
    config,
    store,
    delivery: new Delivery(fanout, store, config.maxInflight, metrics, log.child({ module: "delivery" })),
    groups,
    presence,
    requests: new Requests(config.maxPayload, (user, except) => presence.newest(user, except)),
    transactions,
    metrics,
    log,
  };
  if (peers) {
    const cluster = new Cluster({
      peers,
      presence,
      requests: ctx.requests,
      transactions,
      log: log.child({ module: "cluster" }),
      session: (user, clientId) => made?.session(user, clientId),
      release: (session) => made!.letGo(session),
      signalHere: (event) => signalHere(ctx, event),
    });
    ctx.cluster = cluster;
    ctx.requests.remote = (to, event, timeoutMs) => cluster.request(to, event, timeoutMs);
    transactions.cluster = {
      leader: () => cluster.leader(),
      check: (user, clientId, event, timeoutMs) => cluster.txnCheck(user, clientId, event, timeoutMs),
    };
  }
  await groups.load();
  await transactions.start();
  const auth = new Authenticator(config);

  const app = Fastify({
    // PROTOCOL: the HTTP parser's limit is at least HERALD_MAX_PAYLOAD + 4 KiB.
    bodyLimit: config.maxPayload + 16 * 1024,
    logger: false,
    // A connection that sends its headers or body slowly holds a socket and a parser: it gets 10 s
    // for the headers and 15 s for the whole request, checked every second (Node's default
    // checks every 30 s, so a 10 s limit held connections for up to 40 s).
    requestTimeout: REQUEST_TIMEOUT_MS,
    http: { headersTimeout: HEADERS_TIMEOUT_MS, connectionsCheckingInterval: 1000 },
    // A path fastify cannot decode (`%ZZ`) and a request Node's parser refuses (headers too large,
    // a timeout) answer in the protocol's error shape too.
    frameworkErrors: (error, _req, reply) => {
      (reply as FastifyReply).status(400).type("application/json").send(errorBody("BAD_REQUEST", error.message));
    },
    clientErrorHandler: (err, socket) => {
      if ((err as { code?: string }).code === "ECONNRESET" || socket.destroyed) return;
      const body = errorBody("BAD_REQUEST", clientErrorMessage(err));
      if (socket.writable) {
        socket.write(
          `HTTP/1.1 400 Bad Request\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${body}`,
        );
      }
      socket.destroy(err);
    },
  });
  // Past this many open connections (HTTP and sockets alike) new ones are refused at accept.
  app.server.maxConnections = config.maxConnections;
  app.server.on("drop", () => metrics.refusedConnections.inc());
  const io = new Server<ClientToServerEvents, ServerToClientEvents>(app.server, {
    // PROTOCOL: at least 2 x HERALD_MAX_PAYLOAD + 64 KiB, so an oversized payload gets PAYLOAD_TOO_LARGE.
    maxHttpBufferSize: 2 * config.maxPayload + 64 * 1024,
    serveClient: false,
  });
  coalesceWrites(io);
  const origins = new OriginPolicy(config);
  const hub = new Hub(ctx, io, auth, origins);
  made = hub;
  await registerHttp(app, {
    ctx,
    auth,
    origins,
    connections: () => hub.connections,
    isLive: (client) => hub.isLive(client),
  });
  // In a cluster a client may be live on another node: a user online there keeps all its clients.
  const retention = new Retention(ctx, (c) => hub.isLive(c) || presence.nodesOf(c.user).length > 0, options.now);

  await app.listen({ port: config.port, host: config.host });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : config.port;
  retention.start();
  void retention.sweep();

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      retention.stop();
      transactions.stop();
      app.server.close(); // no new connections
      hub.stop(); // no new events: what is in flight finishes below
      await store.close(); // everything queued is committed, flushed and answered
      await fanout.close();
      await peers?.close();
      // A client that does not read answers the WebSocket closing handshake only when ws gives up
      // on it, after 30 s, and the stop would wait that long (or be cut by main.ts at 5 s): what is
      // still open after a grace is dropped without the handshake. Taken before the disconnect,
      // which takes the connections out of engine.io's list at once.
      const terminate = terminator(io);
      io.disconnectSockets(true);
      const cut = setTimeout(terminate, CLOSE_GRACE_MS);
      await new Promise<void>((resolve) => io.close(() => resolve()));
      clearTimeout(cut);
      await app.close();
    })();
    return closing;
  };

  const host = config.host.includes(":") ? `[${config.host}]` : config.host;
  return { url: `http://${host}:${port}`, port, ctx, retention, close };
}
