/**
 * Request and reply between two services over the hub: a pricing service answers `quote` with
 * onRequest, and a shop asks it with client.request. Neither knows where the other runs; the hub
 * routes a request to the newest live connection of the user it is addressed to. Shown: answers,
 * a refusal carrying the pricing service's own error code, a TIMEOUT when the answer is too slow,
 * and UNAVAILABLE once the pricing service has stopped.
 *
 *   npm start                                        # the hub, in one shell
 *   node --import tsx examples/request-reply.ts      # in another (HERALD_URL to point elsewhere)
 */
import { HeraldError, type RequestOptions } from "../shared/client/index.js";
import { check, connectClient, deadline, finish, online, RUN, sleep, until } from "./common.js";

const PRICES: Record<string, number> = { "tea-1kg": 24.5, "mug-blue": 8, "pot-steel": 39.9 };
/** A SKU whose price comes from a slow supplier: its answer takes longer than the shop waits. */
const SLOW_SKU = "samovar";
const SLOW_MS = 1000;

deadline(30);

const pricing = connectClient("pricing");
const shop = connectClient("shop");
await online(pricing, shop);

let lateAnswers = 0;
pricing.onRequest("quote", async (params) => {
  const { sku, qty } = params as { sku: string; qty: number };
  if (sku === SLOW_SKU) {
    await sleep(SLOW_MS);
    lateAnswers++;
    console.log(
      `(the pricing service answers the ${sku} quote now, after ${SLOW_MS} ms: the hub drops the late answer)`,
    );
    return { sku, qty, total: 450 * qty };
  }
  const price = PRICES[sku];
  // A HeraldError's code reaches the caller as it is: the shop can tell "no such product" from a failure.
  if (price === undefined) throw new HeraldError("NOT_FOUND", `no price for ${sku}`);
  return { sku, qty, total: Math.round(price * qty * 100) / 100 };
});

type Answer = { result: { total: number } } | { code: string; message: string };

/** The shop's call, printed: what came back, or the error's code and message, and how long it took. */
async function quote(sku: string, qty: number, options: RequestOptions = {}): Promise<Answer> {
  const started = performance.now();
  let answer: Answer;
  try {
    answer = { result: (await shop.request(`pricing-${RUN}`, "quote", { sku, qty }, options)) as { total: number } };
  } catch (err) {
    if (!(err instanceof HeraldError)) throw err;
    answer = { code: err.code, message: err.message };
  }
  const what = `quote ${qty} x ${sku}${options.timeoutMs === undefined ? "" : `, timeoutMs ${options.timeoutMs}`}`;
  const got = "result" in answer ? JSON.stringify(answer.result) : `${answer.code}: ${answer.message}`;
  console.log(`${what.padEnd(36)} -> ${got} (${(performance.now() - started).toFixed(0)} ms)`);
  return answer;
}

console.log(`The shop (user shop-${RUN}) asks the pricing service (user pricing-${RUN}) for quotes.\n`);
const tea = await quote("tea-1kg", 2);
console.log("three at once:");
const many = await Promise.all(Object.keys(PRICES).map((sku) => quote(sku, 3)));
const unknown = await quote("kettle-red", 1);
const slow = await quote(SLOW_SKU, 1, { timeoutMs: 200 });
// Closed only once it has answered the slow quote, to show that a late answer goes nowhere.
await until(() => lateAnswers === 1, 2 * SLOW_MS);
await pricing.close();
console.log("the pricing service stops");
const gone = await quote("tea-1kg", 1);

console.log("");
check("result" in tea && tea.result.total === 49, "a quote is answered with the pricing service's result");
check(
  many.every((a, i) => "result" in a && a.result.total === Math.round(Object.values(PRICES)[i]! * 300) / 100),
  `${many.length} quotes asked at once are each answered with their own result`,
);
check(
  "code" in unknown && unknown.code === "NOT_FOUND" && unknown.message === "no price for kettle-red",
  "a refusal reaches the shop with the pricing service's own code and message (NOT_FOUND)",
);
check("code" in slow && slow.code === "TIMEOUT", "an answer slower than timeoutMs is a TIMEOUT for the shop");
check(lateAnswers === 1, "the pricing service did answer the slow quote, after the shop had stopped waiting");
check(
  "code" in gone && gone.code === "UNAVAILABLE",
  "with nobody to answer, the request fails at once with UNAVAILABLE",
);

await shop.close();
finish();
