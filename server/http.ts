/**
 * The HTTP API (PROTOCOL.md "HTTP") on fastify: health, publish, history, stats, metrics, and the
 * built web app. Errors are `{ "error": Err }` with the status from the error table, also those
 * that fastify or Node's parser raise before a route runs.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import helmet from "@fastify/helmet";
import fastifyStatic from "@fastify/static";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { ERRORS, HeraldError } from "../shared/errors.js";
import type { StatsOk } from "../shared/protocol.js";
import { groupNameSchema, historyQuerySchema, httpPublishSchema, retryBodySchema } from "../shared/schemas.js";
import type { Authenticator } from "./auth.js";
import { type Caller, topicOf } from "./caller.js";
import type { Context } from "./context.js";
import { history } from "./history.js";
import { failure } from "./hub.js";
import type { OriginPolicy } from "./origin.js";
import { publish } from "./publish.js";
import { TokenBucket } from "./ratelimit.js";

/** Requests one connection may have waiting for their answers before it is closed. */
const MAX_PIPELINED = 16;
const PUBLISH_ROUTE = "/api/v1/publish";

const digest = (text: string): Buffer => crypto.createHash("sha256").update(text).digest();

/** The body of an error raised before a route ran (fastify's frameworkErrors, Node's clientError). */
export function errorBody(code: "BAD_REQUEST", message: string): string {
  return JSON.stringify({ error: { code, message } });
}

export interface HttpDeps {
  ctx: Context;
  auth: Authenticator;
  origins: OriginPolicy;
  connections: () => number;
  isLive: (client: { user: string; clientId: string }) => boolean;
}

export async function registerHttp(
  app: FastifyInstance,
  { ctx, auth, origins, connections, isLive }: HttpDeps,
): Promise<void> {
  /** One rate bucket per user over HTTP; full buckets are forgotten. */
  const buckets = new Map<string, TokenBucket>();
  const sweep = setInterval(() => {
    for (const [user, bucket] of buckets) if (bucket.idle()) buckets.delete(user);
  }, 60_000);
  sweep.unref();
  app.addHook("onClose", async () => clearInterval(sweep));

  const caller = async (req: FastifyRequest): Promise<Caller> => {
    const header = req.headers.authorization;
    const token = header?.startsWith("Bearer ") ? header.slice(7) : undefined;
    const { user, admin } = await auth.identify({ user: req.headers["x-herald-user"], token });
    let bucket = buckets.get(user);
    if (!bucket) {
      bucket = new TokenBucket(ctx.config.rateLimit);
      buckets.set(user, bucket);
    }
    return { user, admin, bucket };
  };
  const parse = <T>(
    schema: {
      safeParse(
        v: unknown,
      ): { success: true; data: T } | { success: false; error: { issues: { path: PropertyKey[]; message: string }[] } };
    },
    value: unknown,
  ): T => {
    const r = schema.safeParse(value);
    if (r.success) return r.data;
    throw new HeraldError(
      "BAD_REQUEST",
      r.error.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`).join("; "),
    );
  };

  app.setErrorHandler((err: unknown, req: FastifyRequest, reply: FastifyReply) => {
    let error = failure(err).error;
    const fst = err as { code?: string; statusCode?: number; message?: string };
    if (!(err instanceof HeraldError) && typeof fst.statusCode === "number" && fst.statusCode < 500) {
      // fastify's own: body too large, bad JSON, wrong content type.
      error =
        fst.statusCode === 413
          ? { code: "PAYLOAD_TOO_LARGE", message: "request body too large" }
          : { code: "BAD_REQUEST", message: fst.message ?? "bad request" };
    }
    if (error.code === "INTERNAL") ctx.log.error({ err, url: req.url }, "request failed");
    // A refused publish counts by its code, as over a socket (hub.ts answer).
    if (req.routeOptions.url === PUBLISH_ROUTE) ctx.metrics.publishes.inc({ result: error.code });
    if (error.retryAfterMs !== undefined) reply.header("retry-after", Math.ceil(error.retryAfterMs / 1000));
    reply.status(ERRORS[error.code].status).send({ error });
  });

  // A client may pipeline requests without reading the answers; each answer waits in memory for the
  // ones before it, so past a few (browsers and curl never pipeline) the connection is closed.
  const pipelined = new WeakMap<object, number>();
  app.addHook("onRequest", async (req, reply) => {
    const socket = req.raw.socket;
    const waiting = (pipelined.get(socket) ?? 0) + 1;
    pipelined.set(socket, waiting);
    if (waiting > MAX_PIPELINED) {
      reply.hijack();
      socket.destroy();
      return;
    }
    // A DNS name rebound to this machine would make another site's page same-origin (origin.ts).
    const { host } = req.headers;
    if (!origins.trustsHost(host)) {
      throw new HeraldError(
        "FORBIDDEN",
        `Host ${host} is not this hub's in dev auth; list its origin in HERALD_ALLOWED_ORIGINS`,
      );
    }
  });
  app.addHook("onResponse", async (req) => {
    const socket = req.raw.socket;
    pipelined.set(socket, (pipelined.get(socket) ?? 1) - 1);
  });

  // The web app's headers: no framing by other sites, nothing but its own scripts, styles and
  // sockets, no MIME sniffing, no referrer. HSTS is left to the TLS proxy in front, if any: sent
  // over plain http it would mean nothing, and it outlives a change of mind for a year.
  await app.register(helmet, {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
      },
    },
    hsts: false,
  });

  app.get("/healthz", async () => ({ ok: true }));

  app.post(PUBLISH_ROUTE, async (req) => {
    const who = await caller(req);
    return publish(ctx, who, parse(httpPublishSchema, req.body));
  });

  app.get<{ Params: { topic: string } }>("/api/v1/topics/:topic/messages", async (req) => {
    const who = await caller(req);
    const query = parse(historyQuerySchema, req.query);
    const args: { topic: string; before?: number; after?: number; limit?: number } = { topic: req.params.topic };
    if (query.before !== undefined) args.before = query.before;
    if (query.after !== undefined) args.after = query.after;
    if (query.limit !== undefined) args.limit = query.limit;
    return history(ctx, who, args);
  });

  app.get("/api/v1/stats", async (req): Promise<StatsOk> => {
    const who = await caller(req);
    if (!who.admin) throw new HeraldError("FORBIDDEN", "stats are for admins");
    const stats = await ctx.store.stats();
    const subscriptions = stats.subscriptions.map((s) => ({ ...s, live: isLive(s) }));
    // A group's oldest unfinished message is the one after its low-water mark.
    const groups = await Promise.all(
      ctx.groups.stats().map(async (g) => {
        if (g.lag === 0) return g;
        const [oldest] = (await ctx.store.read(g.topic, g.acked, 1)).messages;
        return oldest ? { ...g, oldestUnackedTs: oldest.ts } : g;
      }),
    );
    return { node: ctx.config.nodeId, now: Date.now(), connections: connections(), ...stats, subscriptions, groups };
  });

  app.post<{ Params: { topic: string; group: string } }>("/api/v1/topics/:topic/groups/:group/retry", async (req) => {
    const who = await caller(req);
    const body = parse(retryBodySchema, req.body ?? {});
    const group = parse(groupNameSchema, req.params.group);
    if (topicOf(req.params.topic).kind === "dead") {
      throw new HeraldError("BAD_REQUEST", "a dead-letter topic has no consumer groups");
    }
    if (!who.admin) throw new HeraldError("FORBIDDEN", "retrying dead letters is for admins");
    const to = body.to ?? Number.MAX_SAFE_INTEGER;
    return { retried: await ctx.groups.retry(req.params.topic, group, body.from ?? 1, to) };
  });

  const metricsToken = ctx.config.metricsToken === undefined ? undefined : digest(ctx.config.metricsToken);
  app.get("/metrics", async (req, reply) => {
    if (metricsToken) {
      const header = req.headers.authorization;
      const given = header?.startsWith("Bearer ") ? digest(header.slice(7)) : undefined;
      // Digests of equal length, so that the comparison takes the same time for any wrong token.
      if (!given || !crypto.timingSafeEqual(given, metricsToken)) {
        throw new HeraldError("UNAUTHORIZED", "/metrics needs Authorization: Bearer <HERALD_METRICS_TOKEN>");
      }
    }
    reply.type(ctx.metrics.registry.contentType);
    return ctx.metrics.registry.metrics();
  });

  // The built chat; any other page path gets index.html so that links like /room/NAME work.
  const hasWeb = fs.existsSync(path.join(ctx.config.webDir, "index.html"));
  if (hasWeb) await app.register(fastifyStatic, { root: ctx.config.webDir, wildcard: false });
  app.setNotFoundHandler((req, reply) => {
    if (req.url.startsWith("/api/") || req.method !== "GET" || !hasWeb) {
      const error = { code: "NOT_FOUND", message: `no route ${req.method} ${req.url.split("?")[0]}` };
      return reply.status(404).send({ error });
    }
    return reply.sendFile("index.html");
  });
}
