/**
 * A backlog built up while every worker was away, and drained when they come back. The ledger
 * service posts to 100 accounts; each posting carries its account as the ordering key and the
 * account's own counter. While no member of the group "ledger" is connected, COUNT postings are
 * published and the hub holds them. Then ten members connect and drain them: the hub hands out
 * one posting per account at a time, so each account's postings are applied in counter order
 * although ten members share them. First, for comparison, one member alone drains a smaller batch.
 *
 *   npm start                                                   # the hub, in one shell
 *   node --import tsx examples/backlog-recovery.ts              # 100,000 postings (HERALD_URL to point elsewhere)
 *   node --import tsx examples/backlog-recovery.ts --count 20000
 *
 * Options: --count N (default 100000), --solo N (the batch one member drains alone, default count / 10).
 */
import { parseArgs } from "node:util";
import type { HeraldClient, Message } from "../shared/client/index.js";
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

const { values } = parseArgs({ options: { count: { type: "string" }, solo: { type: "string" } } });
const COUNT = Number(values.count ?? 100000);
const SOLO = Number(values.solo ?? Math.round(COUNT / 10));
if (!(Number.isSafeInteger(COUNT) && COUNT >= 100 && Number.isSafeInteger(SOLO) && SOLO >= 100)) {
  console.error("usage: backlog-recovery.ts [--count N] [--solo N], each at least 100");
  process.exit(2);
}
const ACCOUNTS = 100;
const MEMBERS = 10;
/** Applying a posting takes a member 1 ms of waiting (a write to another system, say), 4 at once. */
const APPLY_MS = 1;
const CONCURRENCY = 4;
/** Producer connections: each has a HERALD_RATE_LIMIT of its own (1000 calls a second by default). */
const PRODUCERS = 25;
const TOPIC = `room:ledger-${RUN}`;

deadline(120);

const accounts = Array.from({ length: ACCOUNTS }, (_, a) => `acct-${String(a).padStart(2, "0")}`);
/** Each account's last applied counter, and what broke the order. */
const applied = new Map<string, number>();
let outOfOrder = 0;
let processed = 0;
const seqs = new Set<number>();
let twice = 0;
/** What each member (by its number) applied in the current drain. */
const shares: number[] = Array.from({ length: MEMBERS }, () => 0);

async function apply(message: Message, member: number): Promise<void> {
  const { account, n } = message.payload as { account: string; n: number };
  if ((applied.get(account) ?? 0) !== n - 1) outOfOrder++;
  applied.set(account, n);
  if (seqs.has(message.seq)) twice++;
  seqs.add(message.seq);
  await sleep(APPLY_MS);
  processed++;
  shares[member] = (shares[member] ?? 0) + 1;
}

const members = (count: number) => Array.from({ length: count }, (_, i) => connectClient("ledger", `ledger-${i + 1}`));
const join = (clients: HeraldClient[]) =>
  Promise.all(
    clients.map((c, i) =>
      c.subscribe(TOPIC, (message) => apply(message, i), { group: "ledger", concurrency: CONCURRENCY }),
    ),
  );

/**
 * Publishes `perAccount` postings to every account with no member connected. An account's next
 * posting is published once the previous one is stored, so its seqs follow its counter.
 */
async function publishBacklog(perAccount: number, from: number): Promise<void> {
  const producers = Array.from({ length: PRODUCERS }, (_, i) => connectClient("ledger-api", `api-${i + 1}`));
  await online(...producers);
  const started = performance.now();
  await Promise.all(
    accounts.map(async (account, a) => {
      const producer = producers[a % PRODUCERS]!;
      for (let n = from + 1; n <= from + perAccount; n++) {
        await publishPaced(
          producer,
          TOPIC,
          { account, n, amount: (n % 9) + 1 },
          { id: `${account}-${n}`, key: account },
        );
      }
    }),
  );
  const ms = performance.now() - started;
  const total = perAccount * ACCOUNTS;
  console.log(
    `published ${total} postings in ${(ms / 1000).toFixed(1)} s (${perSecond(total, ms)} a second) with no member connected`,
  );
  await Promise.all(producers.map((p) => p.close()));
}

/** Connects `clients` as members and times their drain of the backlog, up to `target` applied in all. */
async function drain(clients: HeraldClient[], target: number) {
  await online(...clients);
  shares.fill(0);
  const started = performance.now();
  const memberships = await join(clients);
  await until(() => processed >= target, 60000);
  return { ms: performance.now() - started, memberships };
}

console.log(`Ledger postings to ${ACCOUNTS} accounts on ${TOPIC}, keyed by account; each takes a member`);
console.log(`${APPLY_MS} ms to apply, ${CONCURRENCY} at a time.\n`);

// The group must exist before the backlog builds up: a new group starts at the topic's head.
const founder = members(1);
await online(...founder);
await join(founder);
await Promise.all(founder.map((c) => c.close()));

const soloPerAccount = Math.max(1, Math.round(SOLO / ACCOUNTS));
await publishBacklog(soloPerAccount, 0);
const solo = members(1);
const { ms: soloMs } = await drain(solo, soloPerAccount * ACCOUNTS);
const soloRate = perSecond(soloPerAccount * ACCOUNTS, soloMs);
console.log(
  `one member alone drained ${soloPerAccount * ACCOUNTS} in ${(soloMs / 1000).toFixed(1)} s: ${soloRate} a second\n`,
);
await Promise.all(solo.map((c) => c.close()));

const perAccount = Math.max(1, Math.round(COUNT / ACCOUNTS));
await publishBacklog(perAccount, soloPerAccount);
const team = members(MEMBERS);
const total = (soloPerAccount + perAccount) * ACCOUNTS;
const { ms: teamMs, memberships } = await drain(team, total);
const teamRate = perSecond(perAccount * ACCOUNTS, teamMs);
console.log(
  `ten members drained ${perAccount * ACCOUNTS} in ${(teamMs / 1000).toFixed(1)} s: ${teamRate} a second, ` +
    `${(teamRate / soloRate).toFixed(1)}x one member alone; each applied ${shares.join(", ")}`,
);
// Time for a second copy of a posting, were there one, to arrive before the counts are read.
await sleep(300);

console.log("");
check(processed === total && twice === 0, `${processed} of ${total} postings applied, none twice`);
check(
  outOfOrder === 0 && accounts.every((a) => applied.get(a) === soloPerAccount + perAccount),
  `every account's ${soloPerAccount + perAccount} postings applied in counter order (${outOfOrder} out of order)`,
);

// The run's group ends with it: the last member to leave ends a group.
await Promise.all(memberships.map((m) => m.unsubscribe()));
await Promise.all(team.map((c) => c.close()));
finish();
