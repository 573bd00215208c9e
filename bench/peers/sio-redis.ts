/**
 * Issue 17's peer for the cluster: raw socket.io (bench/peers/raw-sio.ts) on several nodes joined
 * by `@socket.io/redis-streams-adapter`, so that a broadcast on one node reaches the room's
 * members on every node through a Redis stream. It stores nothing per client: a subscriber that
 * was away, or whose node died, gets nothing of what it missed.
 */
import { createAdapter } from "@socket.io/redis-streams-adapter";
import { Redis } from "ioredis";
import { startRawPeer } from "./sio-common.js";

const redis = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
startRawPeer("socket.io redis-streams", () => redis.disconnect(), {
  adapter: createAdapter(redis, { streamName: process.env.STREAM ?? "socket.io" }),
});
