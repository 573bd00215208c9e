/**
 * `npm run chaos`: the long crash run (10 SIGKILLs, 10k+ messages), printing what it checked.
 * `npm run chaos -- --cluster`: the same on three nodes on PostgreSQL and Redis, killed in turn.
 */
import { runChaos } from "./scenario.js";

const cluster = process.argv.includes("--cluster");

const kills = Number(process.env.CHAOS_KILLS ?? 10);
const messages = Number(process.env.CHAOS_MESSAGES ?? 5000);
const started = Date.now();
const report = await runChaos({
  kills,
  messages,
  publishers: 2,
  subscribers: 3,
  transactions: Math.round(messages / 10),
  requests: Math.round(messages / 5),
  nodes: cluster ? 3 : 1,
  log: (l) => console.log(`chaos: ${l}`),
});
console.log(
  `chaos: ${report.published} messages, ${report.kills} SIGKILLs, ${((Date.now() - started) / 1000).toFixed(1)} s`,
);
for (const check of report.checks) console.log(`chaos: checked: ${check}`);
if (report.violations.length > 0) {
  for (const v of report.violations.slice(0, 50)) console.error(`chaos: VIOLATION: ${v}`);
  process.exit(1);
}
console.log("chaos: every check held");
