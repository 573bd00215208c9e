/**
 * Herald as a job queue: a worker subscribes durably and acks each job only once it is done; a
 * producer enqueues jobs. Stop the worker, enqueue more, start it again with the same clientId:
 * it gets every job it missed, after the last one it finished, and no job is done twice.
 *
 *   npm start                                          # the hub, in one shell
 *   node --import tsx examples/jobs.ts work            # the worker (subscribes durably); Ctrl-C
 *   node --import tsx examples/jobs.ts produce 20      # enqueue 20 jobs, worker running or not
 *   node --import tsx examples/jobs.ts work            # picks up where it stopped
 *
 * Options: --url (default http://127.0.0.1:3000), --stop-after N (the worker stops after N jobs).
 */
import { parseArgs } from "node:util";
import { HeraldClient } from "../shared/client/index.js";

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { url: { type: "string", default: "http://127.0.0.1:3000" }, "stop-after": { type: "string" } },
});
const [command, count] = positionals;
const TOPIC = "room:jobs";

if (command === "produce") {
  const client = new HeraldClient({ url: values.url, clientId: `producer-${process.pid}`, user: "shop" });
  client.connect();
  for (let n = 1; n <= Number(count ?? 10); n++) {
    // The id makes a retry safe: the server stores each id once per publisher.
    const { seq, duplicate } = await client.publish(TOPIC, { invoice: n }, { id: `invoice-${n}` });
    console.log(`enqueued invoice ${n} as seq ${seq}${duplicate ? " (it was already there)" : ""}`);
  }
  await client.close();
} else if (command === "work") {
  const stopAfter = Number(values["stop-after"] ?? Number.POSITIVE_INFINITY);
  // The same clientId every run: the subscription and its cursor are durable on the server.
  const client = new HeraldClient({ url: values.url, clientId: "invoice-worker-1", user: "worker" });
  const stop = () => void client.close().then(() => process.exit(0));
  client.connect();
  let done = 0;
  await client.subscribe(TOPIC, async (job) => {
    await new Promise((resolve) => setTimeout(resolve, 20)); // the work
    console.log(`done: seq ${job.seq} ${JSON.stringify(job.payload)}`);
    // Returning acks the job; a job whose handler did not return is delivered again.
    if (++done >= stopAfter) setImmediate(stop);
  });
  console.log("working; Ctrl-C to stop");
  process.once("SIGINT", stop);
} else {
  console.error("usage: examples/jobs.ts work [--stop-after N] | produce N   [--url URL]");
  process.exit(2);
}
