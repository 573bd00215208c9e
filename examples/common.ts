/**
 * What the queue examples (decoupling, peak-shaving, transactional-signup, backlog-recovery,
 * request-reply, ordered-processing) share: the hub's address, names of their own for each run,
 * a bound on how long a run may take, and the verdict that becomes the exit code.
 */
import { HeraldClient, HeraldError, type PublishOk, type PublishOptions } from "../shared/client/index.js";

export const HUB_URL = process.env.HERALD_URL || "http://127.0.0.1:3000";

/**
 * Each run has users, client ids and topics of its own: a rerun against the same hub must not
 * resume the durable state (group positions, publish ids) an earlier run left there.
 */
export const RUN = `${Date.now().toString(36)}${Math.floor(Math.random() * 36 ** 4).toString(36)}`;

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A client of `user` (suffixed with the run id), connecting; `name` makes its clientId. */
export function connectClient(user: string, name: string = user): HeraldClient {
  const client = new HeraldClient({ url: HUB_URL, clientId: `${name}-${RUN}`, user: `${user}-${RUN}` });
  client.connect();
  return client;
}

/** Waits for the connections: the SDK would otherwise retry for ever against a hub that is not running. */
export async function online(...clients: HeraldClient[]): Promise<void> {
  const until = Date.now() + 5000;
  while (clients.some((c) => c.state !== "connected")) {
    if (Date.now() > until) {
      console.error(`No Herald hub answers at ${HUB_URL}: start one with \`npm start\`, or set HERALD_URL.`);
      process.exit(2);
    }
    await sleep(20);
  }
}

/** Resolves once `done()` holds; false when `ms` passed first. */
export async function until(done: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!done()) {
    if (Date.now() > end) return false;
    await sleep(10);
  }
  return true;
}

/**
 * Publishes, and when the hub says RATE_LIMITED (HERALD_RATE_LIMIT calls a second per connection)
 * waits as long as it says and sends again with the same id, which the hub stores once.
 */
export async function publishPaced(
  client: HeraldClient,
  topic: string,
  payload: unknown,
  options: PublishOptions & { id: string },
): Promise<PublishOk> {
  for (;;) {
    try {
      return await client.publish(topic, payload, options);
    } catch (err) {
      if (!(err instanceof HeraldError && err.code === "RATE_LIMITED")) throw err;
      await sleep(err.retryAfterMs ?? 100);
    }
  }
}

let failures = 0;

/** One claim of the example, printed with its verdict. */
export function check(ok: boolean, claim: string): void {
  if (!ok) failures++;
  console.log(`${ok ? "ok  " : "FAIL"}  ${claim}`);
}

/** Ends the run: exit code 0 when every check held. */
export function finish(): never {
  console.log(failures === 0 ? "\nEverything shown held." : `\n${failures} check(s) did not hold.`);
  process.exit(failures === 0 ? 0 : 1);
}

/** Fails the run if it is not over in `seconds`, so that a run never hangs. */
export function deadline(seconds: number): void {
  setTimeout(() => {
    console.log(`FAIL  the example did not finish within ${seconds} s`);
    process.exit(1);
  }, seconds * 1000).unref();
}

export const perSecond = (count: number, ms: number) => Math.round((count * 1000) / Math.max(ms, 1));
