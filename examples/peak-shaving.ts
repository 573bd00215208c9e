/**
 * Herald as a shock absorber: a burst of sign-up e-mails, far above what the mail workers can
 * send, is taken by the hub at once, held, and handed to the workers at their own pace. When a
 * group holds HERALD_MAX_BACKLOG unfinished messages, the hub refuses further publishes to its
 * topic with BACKLOG_FULL instead of queueing without end: the producer keeps what was refused and
 * sends it again after the `retryAfterMs` it was told. Nothing is dropped, and every e-mail that
 * was accepted is sent exactly once.
 *
 *   HERALD_MAX_BACKLOG=500 npm start                 # the hub with a small backlog limit
 *   node --import tsx examples/peak-shaving.ts       # in another shell (HERALD_URL to point elsewhere)
 *
 * Against a hub with the default limit (1,000,000) the whole burst fits, which it says.
 */
import { type HeraldClient, HeraldError, type Message } from "../shared/client/index.js";
import {
  check,
  connectClient,
  deadline,
  finish,
  online,
  perSecond,
  publishPaced,
  RUN,
  sleep,
  until,
} from "./common.js";

const BURST = 2000;
const FRONTENDS = 4;
const WORKERS = 2;
/** Each e-mail takes a worker 10 ms: two workers send about 200 a second. */
const SEND_MS = 10;
const TOPIC = `room:signup-mails-${RUN}`;

deadline(60);

const sent = new Map<string, number>();
const workers = Array.from({ length: WORKERS }, (_, i) => connectClient("mailer", `mailer-${i + 1}`));
// The burst comes through several front-end connections, as sign-ups would: each connection has a
// HERALD_RATE_LIMIT of its own, while the backlog limit is the topic's, whoever publishes.
const frontends = Array.from({ length: FRONTENDS }, (_, i) => connectClient("web", `web-${i + 1}`));
await online(...workers, ...frontends);
const memberships = await Promise.all(
  workers.map((worker) =>
    worker.subscribe(
      TOPIC,
      async (message: Message) => {
        await sleep(SEND_MS);
        sent.set(message.id, (sent.get(message.id) ?? 0) + 1);
      },
      { group: "mailers" },
    ),
  ),
);

console.log(`${BURST} sign-ups arrive at once through ${FRONTENDS} front-ends; ${WORKERS} mail workers send one`);
console.log(`e-mail each per ${SEND_MS} ms, about ${(WORKERS * 1000) / SEND_MS} a second.\n`);

let accepted = 0;
let refusals = 0;
let retryAfterMs = 1000;

/** Offers one sign-up's e-mail to the hub: false when it was refused with BACKLOG_FULL. */
async function offer(frontend: HeraldClient, n: number): Promise<boolean> {
  try {
    await publishPaced(frontend, TOPIC, { to: `user${n}@example.com`, template: "welcome" }, { id: `mail-${n}` });
    accepted++;
    return true;
  } catch (err) {
    if (!(err instanceof HeraldError && err.code === "BACKLOG_FULL")) throw err;
    refusals++;
    retryAfterMs = err.retryAfterMs ?? retryAfterMs;
    return false;
  }
}

/** Each front-end offers its share all at once, as a burst arrives; the refused ones come back. */
async function send(ns: number[]): Promise<number[]> {
  const refused = await Promise.all(
    frontends.map(async (frontend, f) => {
      const mine = ns.filter((_, i) => i % FRONTENDS === f);
      const answers = await Promise.all(mine.map((n) => offer(frontend, n)));
      return mine.filter((_, j) => !answers[j]);
    }),
  );
  return refused.flat();
}

const start = performance.now();
const seconds = () => ((performance.now() - start) / 1000).toFixed(2).padStart(5);
const pad = (n: number) => String(n).padStart(4);
const report = setInterval(() => {
  console.log(
    `t=${seconds()} s  accepted ${pad(accepted)}  sent ${pad(sent.size)}  held by the hub ${pad(accepted - sent.size)}` +
      (refusals > 0 ? `  BACKLOG_FULL answers so far ${refusals}` : ""),
  );
}, 1000);

let refused = await send(Array.from({ length: BURST }, (_, n) => n));
const inMs = performance.now() - start;
const firstAccepted = BURST - refused.length;
console.log(
  `t=${seconds()} s  the burst is answered: ${firstAccepted} accepted, ${refused.length} refused with BACKLOG_FULL`,
);
if (refused.length > 0) {
  console.log(
    `           the front-ends keep the refused ones and offer them again every ${retryAfterMs} ms (retryAfterMs)`,
  );
}
while (refused.length > 0) {
  await sleep(retryAfterMs);
  refused = await send(refused);
}
await until(() => sent.size === BURST, 30000);
const outMs = performance.now() - start;
clearInterval(report);
// Time for a second copy of an e-mail, were there one, to be sent before the counts are read.
await sleep(300);

console.log("");
console.log(
  `rate in:  the ${BURST} e-mails were offered in ${(inMs / 1000).toFixed(2)} s, ${perSecond(BURST, inMs)} a second; ` +
    `the hub took ${firstAccepted} of them at once`,
);
console.log(`rate out: ${sent.size} sent in ${(outMs / 1000).toFixed(2)} s, ${perSecond(sent.size, outMs)} a second`);
if (refusals > 0) {
  console.log(
    `BACKLOG_FULL: while the workers' group held HERALD_MAX_BACKLOG unfinished e-mails the hub refused ` +
      `publishes (${refusals} answers in all), and took the refused e-mails once the workers had made room.`,
  );
} else {
  console.log(
    "The hub's backlog limit was not reached (HERALD_MAX_BACKLOG is 1,000,000 unless set). To see BACKLOG_FULL, " +
      "start the hub with `HERALD_MAX_BACKLOG=500 npm start`.",
  );
}
console.log("");
check(accepted === BURST, `${accepted} of ${BURST} e-mails accepted in the end, none given up`);
check(
  sent.size === BURST && [...sent.values()].every((n) => n === 1),
  `${sent.size} of ${BURST} accepted e-mails sent, each exactly once`,
);
check(
  perSecond(BURST, inMs) > 2 * perSecond(sent.size, outMs),
  "the burst came in at more than twice the workers' pace, and the hub held the difference",
);

await Promise.all(memberships.map((m) => m.unsubscribe()));
await Promise.all([...workers, ...frontends].map((c) => c.close()));
finish();
