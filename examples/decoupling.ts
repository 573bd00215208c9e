/**
 * Herald between services: an order service publishes orders to one topic, and two services that
 * it knows nothing about, billing and shipping, each read every order in a consumer group of their
 * own. Shipping is stopped mid-way and started again: it catches up on what it missed, processes
 * nothing twice, and the order service never notices (each of its publishes is answered).
 *
 *   npm start                                        # the hub, in one shell
 *   node --import tsx examples/decoupling.ts         # in another (HERALD_URL to point elsewhere)
 */
import type { GroupSubscription, HeraldClient, Message } from "../shared/client/index.js";
import { check, connectClient, deadline, finish, online, RUN, sleep, until } from "./common.js";

const ORDERS = 300;
const STOP_AT = 100;
const START_AT = 200;
const TOPIC = `room:orders-${RUN}`;

deadline(60);

/** A consumer service: one member of its own group, counting what it processed. */
function service(name: "billing" | "shipping") {
  const seen = new Map<number, number>();
  let client: HeraldClient | undefined;
  let membership: GroupSubscription | undefined;
  let redelivered = 0;
  return {
    seen,
    redelivered: () => redelivered,
    async start() {
      // The same clientId after a restart: the membership, and the group's place in the topic,
      // are the hub's, so the new process goes on where the old one stopped.
      client = connectClient(name, `${name}-1`);
      await online(client);
      membership = await client.subscribe(
        TOPIC,
        async (message: Message) => {
          const { order } = message.payload as { order: number };
          if ((message.attempt ?? 1) > 1) redelivered++;
          seen.set(order, (seen.get(order) ?? 0) + 1);
          await sleep(2);
        },
        { group: name },
      );
    },
    /** What a stopped process does: it goes away without unsubscribing, and the hub keeps its place. */
    async stop() {
      await client?.close();
    },
    /** Ends the group with the run, instead of leaving it on the hub. */
    async leave() {
      await membership?.unsubscribe();
      await client?.close();
    },
  };
}

const billing = service("billing");
const shipping = service("shipping");
const orders = connectClient("orders", "order-service");
await online(orders);
// A group starts at the topic's head when it is created: both exist before the first order.
await Promise.all([billing.start(), shipping.start()]);

console.log(`The order service publishes ${ORDERS} orders to ${TOPIC}, one every 10 ms.`);
console.log("Billing and shipping each read the topic in a consumer group of their own.\n");

let answered = 0;
let slowest = 0;
let caughtUp: Promise<string> | undefined;
for (let order = 1; order <= ORDERS; order++) {
  const sent = performance.now();
  await orders.publish(TOPIC, { order, total: 10 + (order % 7) }, { id: `order-${order}` });
  slowest = Math.max(slowest, performance.now() - sent);
  answered++;
  if (order === STOP_AT) {
    await shipping.stop();
    console.log(`after order ${order}: shipping stops (it had processed ${shipping.seen.size} orders)`);
  }
  if (order === START_AT) {
    const missed = order - shipping.seen.size;
    const back = performance.now();
    await shipping.start();
    console.log(`after order ${order}: shipping starts again, ${missed} orders behind`);
    caughtUp = until(() => shipping.seen.size >= START_AT, 10000).then((ok) =>
      ok
        ? `shipping caught up on the ${missed} orders it missed ${((performance.now() - back) / 1000).toFixed(2)} s after its restart, while orders kept coming`
        : `shipping did not catch up on the ${missed} orders it missed within 10 s`,
    );
  }
  await sleep(10);
}

const everyOrder = () => billing.seen.size === ORDERS && shipping.seen.size === ORDERS;
console.log(await caughtUp);
await until(everyOrder, 10000);
// Time for a duplicate, were there one, to show up before the counts are read.
await sleep(300);

const onceEach = (seen: Map<number, number>) => [...seen.values()].every((n) => n === 1);
console.log("");
check(
  answered === ORDERS,
  `order service: ${answered} of ${ORDERS} publishes answered, the slowest in ${slowest.toFixed(0)} ms`,
);
check(
  billing.seen.size === ORDERS && onceEach(billing.seen),
  `billing processed ${billing.seen.size} of ${ORDERS} orders, none twice`,
);
check(
  shipping.seen.size === ORDERS && onceEach(shipping.seen),
  `shipping processed ${shipping.seen.size} of ${ORDERS} orders across its restart, none lost, none twice`,
);
if (shipping.redelivered() > 0) {
  console.log(
    `      (${shipping.redelivered()} of them were redeliveries: handed to shipping before it stopped, not done then)`,
  );
}

await Promise.all([orders.close(), billing.leave(), shipping.leave()]);
finish();
