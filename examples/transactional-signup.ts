/**
 * A registration and its "user registered" message, both or neither: the sign-up service saves
 * the account in its own SQLite table inside `client.transaction`, which prepares the message on
 * the hub (stored, not delivered), runs the local write, and commits the message once the write
 * is done. Then two instances of the service die at the worst moments, as child processes that
 * SIGKILL themselves: one after its row is committed locally but before the hub's commit, one in
 * the middle of its local transaction. The hub asks the user's live client about each (txn-check),
 * and the surviving instance answers from the table: row present, "commit"; absent, "rollback".
 * The welcome mailer gets the registrations that exist, and only those.
 *
 * The hub asks after HERALD_TXN_CHECK_MS, 10 s by default; for a quick run start it with
 *
 *   HERALD_TXN_CHECK_MS=500 npm start
 *   node --import tsx examples/transactional-signup.ts   # in another shell (HERALD_URL to point elsewhere)
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { HeraldClient, type Message, type TxnState } from "../shared/client/index.js";
import { check, connectClient, deadline, finish, HUB_URL, online, RUN, sleep, until } from "./common.js";

/** The exit code of a simulated crash, so that the parent tells it from a failure. */
/** As a crash: no exit handler, no flush, no goodbye to the hub. */
const die = (): never => {
  process.kill(process.pid, "SIGKILL");
  throw new Error("unreachable: SIGKILL ends the process");
};
type Crash = "after-local-commit" | "in-local-transaction";

function openTable(file: string) {
  const db = new Database(file);
  db.exec("CREATE TABLE IF NOT EXISTS accounts (name TEXT PRIMARY KEY, txn_id TEXT NOT NULL UNIQUE)");
  return {
    db,
    insert: db.prepare<[string, string]>("INSERT INTO accounts (name, txn_id) VALUES (?, ?)"),
    byTxn: db.prepare<[string], { name: string }>("SELECT name FROM accounts WHERE txn_id = ?"),
    names: () =>
      db
        .prepare<[], { name: string }>("SELECT name FROM accounts ORDER BY name")
        .all()
        .map((r) => r.name),
  };
}

/** One registration: the row and the message together; `crash` kills the process part-way. */
async function register(
  client: HeraldClient,
  table: ReturnType<typeof openTable>,
  topic: string,
  name: string,
  crash?: Crash,
) {
  return client.transaction(topic, { event: "user registered", name }, ({ id }) => {
    // The hub's transaction id goes into the row: it is what a txn-check asks about.
    if (crash === "in-local-transaction") {
      table.db.exec("BEGIN");
      table.insert.run(name, id);
      die();
    }
    table.insert.run(name, id);
    if (crash === "after-local-commit") die();
  });
}

const [crash, file, topic, user, clientId, name] = process.argv.slice(2);
if (crash !== undefined) {
  // Another instance of the sign-up service, started by the program below, which dies in `register`.
  if (
    !(crash === "after-local-commit" || crash === "in-local-transaction") ||
    !file ||
    !topic ||
    !user ||
    !clientId ||
    !name
  ) {
    console.error(
      "usage: transactional-signup.ts [after-local-commit|in-local-transaction FILE TOPIC USER CLIENT NAME]",
    );
    process.exit(2);
  }
  const client = new HeraldClient({ url: HUB_URL, clientId, user });
  client.connect();
  await online(client);
  await register(client, openTable(file), topic, name, crash);
}

deadline(60);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "herald-signup-"));
const dbFile = path.join(dir, "accounts.db");
const table = openTable(dbFile);
const TOPIC = `room:registrations-${RUN}`;

const service = connectClient("signup", "signup-1");
const mailer = connectClient("mailer");
await online(service, mailer);
const welcomed: string[] = [];
const mailbox = await mailer.subscribe(TOPIC, (message: Message) => {
  welcomed.push((message.payload as { name: string }).name);
});

/** Per transaction asked about: the answer, and whose row it was (none for a rollback). */
const answers = new Map<string, { state: TxnState; name?: string }>();
const started = performance.now();
service.onTxnCheck(({ id }) => {
  const row = table.byTxn.get(id);
  const state: TxnState = row ? "commit" : "rollback";
  answers.set(id, row ? { state, name: row.name } : { state });
  const after = ((performance.now() - started) / 1000).toFixed(1);
  console.log(
    `  txn-check from the hub (${after} s in) for ${id}: ${row ? `the row of ${row.name} is there` : "no row has it"}, answered "${state}"`,
  );
  return state;
});

console.log(`Accounts in ${dbFile}; "user registered" messages on ${TOPIC}.`);
console.log(
  "The hub asks about a transaction left undecided after HERALD_TXN_CHECK_MS, 10 s by default: for a quick run " +
    "start the hub with `HERALD_TXN_CHECK_MS=500 npm start`.\n",
);
const ada = await register(service, table, TOPIC, "ada");
console.log(`ada: row saved, then its message committed as seq ${ada.seq}: the normal path.`);

/** Runs a sign-up service instance that crashes in `register`; resolves with the signal that ended it. */
function crashingInstance(how: Crash, instance: number, who: string): Promise<NodeJS.Signals | null> {
  const child = spawn(
    process.execPath,
    [...process.execArgv, import.meta.filename, how, dbFile, TOPIC, `signup-${RUN}`, `signup-${instance}-${RUN}`, who],
    { stdio: "inherit" },
  );
  return new Promise((resolve) => child.once("exit", (_code, signal) => resolve(signal)));
}

const graceExit = await crashingInstance("after-local-commit", 2, "grace");
console.log(`grace: a second instance saved the row, then died before the hub's commit (${graceExit}).`);
const alanExit = await crashingInstance("in-local-transaction", 3, "alan");
console.log(`alan: a third instance died inside its local transaction, so no row (${alanExit}).`);
console.log(
  "\nThe hub holds both messages prepared and delivers neither; once HERALD_TXN_CHECK_MS has passed it asks the " +
    "user's live client, the first instance, which answers from the table:",
);

// The crashed instances' transactions. (On a slow machine the hub may also ask about ada's, which
// this instance was still committing: that one is answered from the table too, and not counted.)
const crashed = () => [...answers.values()].filter((a) => a.name !== "ada");
const decided = await until(() => crashed().length >= 2, 40000);
await until(() => welcomed.includes("grace"), 5000);
// Time for alan's message, were it wrongly committed, to arrive.
await sleep(500);
const { messages } = await service.history(TOPIC);
const logged = messages.map((m) => (m.payload as { name: string }).name);

console.log("");
check(
  graceExit === "SIGKILL" && alanExit === "SIGKILL",
  "both crashed instances were SIGKILLed where they were meant to",
);
check(
  decided &&
    crashed()
      .map((a) => `${a.state}${a.name ? ` ${a.name}` : ""}`)
      .sort()
      .join() === "commit grace,rollback",
  "the hub asked about both: grace's committed, alan's rolled back",
);
check(table.names().join() === "ada,grace", `the accounts table holds ${table.names().join(", ")}`);
check(
  logged.join() === "ada,grace",
  `the hub's log of the topic holds ${logged.join(", ")}: grace committed, alan rolled back`,
);
check(
  welcomed.join() === "ada,grace",
  `the welcome mailer got ${welcomed.join(", ")}, each once, and nothing for alan`,
);

await mailbox.unsubscribe();
await Promise.all([service.close(), mailer.close()]);
table.db.close();
fs.rmSync(dir, { recursive: true, force: true });
finish();
