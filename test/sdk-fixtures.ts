/**
 * SDK test fixtures shared by the SDK suites: clients with a fast backoff that are closed after
 * each test (`sdkClients` registers the afterEach), and polling with a named timeout.
 */
import { afterEach } from "node:test";
import { HeraldClient, type HeraldClientOptions } from "../shared/client/index.js";
import { sleep } from "./helpers.js";

/**
 * A client factory for one test file (`prefix` keeps the clientIds of the files apart), and
 * `closeAll` for a test that must close its clients before it stops its server.
 */
export function sdkClients(prefix: string) {
  let nextId = 0;
  const open = new Set<HeraldClient>();
  const closeAll = async () => {
    await Promise.all([...open].map((c) => c.close()));
    open.clear();
  };
  afterEach(closeAll);
  const client = (url: string, options: Partial<HeraldClientOptions> = {}): HeraldClient => {
    const c = new HeraldClient({
      url,
      clientId: `${prefix}${process.pid}x${nextId++}`,
      user: "alice",
      socketOptions: { transports: ["websocket"] },
      backoff: { baseMs: 50, capMs: 400 },
      ...options,
    });
    open.add(c);
    return c;
  };
  /** A client of `user`, connected. */
  const connected = async (url: string, user: string): Promise<HeraldClient> => {
    const c = client(url, { user });
    c.connect();
    await waitFor(`${user} connected`, () => c.state === "connected");
    return c;
  };
  return { client, connected, closeAll };
}

export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, ms = 8000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}
