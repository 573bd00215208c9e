/**
 * Order per key with parallel workers: every order goes through the steps created, paid, shipped,
 * each step a message keyed by the order id. Four members of the group "fulfilment" process
 * several messages at once each, and an order's steps land on whichever member is free, yet the
 * hub hands out an order's next step only once its previous one is finished, so each order's steps
 * are processed in order while different orders run side by side.
 *
 *   npm start                                            # the hub, in one shell
 *   node --import tsx examples/ordered-processing.ts     # in another (HERALD_URL to point elsewhere)
 */
import type { Message } from "../shared/client/index.js";
import { check, connectClient, deadline, finish, online, publishPaced, RUN, sleep, until } from "./common.js";

const ORDERS = 200;
const STEPS = ["created", "paid", "shipped"] as const;
const MEMBERS = 4;
const CONCURRENCY = 4;
const TOPIC = `room:order-steps-${RUN}`;

deadline(60);

/** Per order, the steps in the order they were processed, each with its seq and the member that did it. */
const trace = new Map<string, { step: string; seq: number; member: number }[]>();
let running = 0;
let mostAtOnce = 0;

const members = Array.from({ length: MEMBERS }, (_, i) => connectClient("fulfilment", `fulfilment-${i + 1}`));
const shop = connectClient("shop");
await online(shop, ...members);
const memberships = await Promise.all(
  members.map((member, i) =>
    member.subscribe(
      TOPIC,
      async (message: Message) => {
        const { order, step } = message.payload as { order: string; step: string };
        running++;
        mostAtOnce = Math.max(mostAtOnce, running);
        // Steps take uneven times: without ordering by key, a quick "paid" would overtake its "created".
        await sleep(1 + Math.floor(Math.random() * 8));
        running--;
        const steps = trace.get(order) ?? [];
        steps.push({ step, seq: message.seq, member: i + 1 });
        trace.set(order, steps);
      },
      { group: "fulfilment", concurrency: CONCURRENCY },
    ),
  ),
);

console.log(`${ORDERS} orders, each published as ${STEPS.join(", ")}, keyed by order id, to ${TOPIC};`);
console.log(`${MEMBERS} members of group "fulfilment" process up to ${CONCURRENCY} steps each at once.\n`);

const orders = Array.from({ length: ORDERS }, (_, n) => `order-${1000 + n}`);
// The shop publishes an order's next step once the previous one is stored (so seq order is step
// order); orders come in over half a second, and their steps interleave in the topic.
await Promise.all(
  orders.map(async (order) => {
    await sleep(Math.floor(Math.random() * 500));
    for (const step of STEPS) {
      await publishPaced(shop, TOPIC, { order, step }, { id: `${order}-${step}`, key: order });
      await sleep(Math.floor(Math.random() * 20));
    }
  }),
);
const total = ORDERS * STEPS.length;
const allDone = await until(() => [...trace.values()].reduce((n, steps) => n + steps.length, 0) >= total, 20000);
// Time for a second copy of a step, were there one, to be processed before the traces are read.
await sleep(300);

for (const order of orders.slice(0, 4)) {
  const steps = trace.get(order) ?? [];
  console.log(`${order}: ${steps.map((s) => `${s.step} (seq ${s.seq}, member ${s.member})`).join(" -> ")}`);
}
const inOrder = orders.filter((order) => (trace.get(order) ?? []).map((s) => s.step).join() === STEPS.join());
const spread = orders.filter((order) => new Set((trace.get(order) ?? []).map((s) => s.member)).size > 1);
const perMember = Array.from({ length: MEMBERS }, (_, i) =>
  [...trace.values()].reduce((n, steps) => n + steps.filter((s) => s.member === i + 1).length, 0),
);

console.log("");
check(
  allDone && inOrder.length === ORDERS,
  `${inOrder.length} of ${ORDERS} orders had their steps processed in order, each step once`,
);
check(
  spread.length > 0 && perMember.every((n) => n > 0),
  `orders interleaved across members: ${spread.length} of ${ORDERS} had steps on more than one member; ` +
    `steps per member ${perMember.join(", ")}`,
);
check(mostAtOnce > MEMBERS, `up to ${mostAtOnce} steps of different orders were in progress at once`);

await Promise.all(memberships.map((m) => m.unsubscribe()));
await Promise.all([shop, ...members].map((c) => c.close()));
finish();
