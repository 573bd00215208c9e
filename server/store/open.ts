/**
 * Opens the store the settings name: the embedded SQLite store (the default, which needs nothing
 * else) or the PostgreSQL store a cluster shares. `pg` is loaded only for the latter.
 */
import type { Config } from "../config.js";
import { SqliteStore } from "./sqlite-store.js";
import type { Store } from "./store.js";

export interface OpenOptions {
  /** Storage faults that answer no request (a failed checkpoint, a lost idle connection), for the logs. */
  onError: (message: string) => void;
  /** The store's clock; tests of retention pass their own. */
  now?: () => number;
}

export async function openStore(config: Readonly<Config>, options: OpenOptions): Promise<Store> {
  const clock = options.now ? { now: options.now } : {};
  if (config.store === "postgres") {
    const { PgStore } = await import("./pg-store.js");
    return PgStore.open({
      url: config.databaseUrl!,
      durability: config.durability,
      poolSize: config.databasePool,
      onError: options.onError,
      ...clock,
    });
  }
  return new SqliteStore({
    dataDir: config.dataDir,
    durability: config.durability,
    onError: options.onError,
    ...clock,
  });
}

/** Where the store keeps its data, for the start line: the folder, or the database without its password. */
export function storeLocation(config: Readonly<Config>): string {
  if (config.store === "sqlite") return config.dataDir;
  const url = new URL(config.databaseUrl!);
  url.password = "";
  url.search = "";
  return `PostgreSQL ${url.host}${url.pathname}`;
}
