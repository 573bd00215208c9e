/**
 * Herald as a job queue: workers join the consumer group "invoicing" of the topic, so that each job
 * goes to one of them, and each acks a job only once it is done; a producer enqueues jobs. Start as
 * many workers as you like (each with its own --worker number): they share the jobs. Stop them all,
 * enqueue more, start one again: it gets every job that was not done, and no finished job is done
 * again. A job whose worker stopped in the middle of it is handed to another worker (`attempt` 2).
 *
 *   npm start                                          # the hub, in one shell
 *   node --import tsx examples/jobs.ts work            # a worker; Ctrl-C
 *   node --import tsx examples/jobs.ts work --worker 2 # another one, in another shell
 *   node --import tsx examples/jobs.ts produce 20      # enqueue 20 jobs, workers running or not
 *
 * Options: --url (default http://127.0.0.1:3000), --worker N (default 1), --stop-after N (the
 * worker stops after N jobs).
 */
import { parseArgs } from "node:util";
import { HeraldClient } from "../shared/client/index.js";

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    url: { type: "string", default: "http://127.0.0.1:3000" },
    worker: { type: "string", default: "1" },
    "stop-after": { type: "string" },
  },
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
  // One clientId per worker (two connections with one clientId replace each other). The group's
  // position belongs to the group, so any worker of it goes on where the others stopped.
  const client = new HeraldClient({ url: values.url, clientId: `invoice-worker-${values.worker}`, user: "worker" });
  const stop = () => void client.close().then(() => process.exit(0));
  client.connect();
  let done = 0;
  await client.subscribe(
    TOPIC,
    async (job) => {
      await new Promise((resolve) => setTimeout(resolve, 20)); // the work
      const again = job.attempt !== undefined && job.attempt > 1 ? ` (attempt ${job.attempt})` : "";
      console.log(`done: seq ${job.seq} ${JSON.stringify(job.payload)}${again}`);
      // Returning acks the job; a job whose handler threw or did not return is handed out again.
      if (++done >= stopAfter) stop(); // takes no further job; this one is acked as it returns
    },
    { group: "invoicing" },
  );
  console.log("working; Ctrl-C to stop");
  process.once("SIGINT", stop);
} else {
  console.error("usage: examples/jobs.ts work [--worker N] [--stop-after N] | produce N   [--url URL]");
  process.exit(2);
}
