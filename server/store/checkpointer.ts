/**
 * WAL checkpoints off the event loop. A checkpoint copies the WAL into the database file and
 * fsyncs both; run by SQLite's auto-checkpoint inside a commit it would stop the event loop for two
 * fsyncs every thousand pages (10 ms and more on a slow disk). So the writer turns auto-checkpoint
 * off and this worker thread, with its own connection, runs PASSIVE checkpoints: they never wait
 * for the writer (a RESTART here would deadlock with the writer's transaction until the busy
 * timeout). SQLite starts the WAL over at a write that finds it all copied; under a load with no
 * pause that moment never comes, so the writer asks for `catchUp` and holds its next commit until
 * the copy is complete (SqliteStore.boundWal): the event loop goes on serving meanwhile.
 */
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";

// Plain JavaScript run as the worker's script, so that it needs no TypeScript loader or build step.
const SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const Database = require(workerData.driver);
const db = new Database(workerData.file);
db.pragma("busy_timeout = 5000");
const checkpoint = () => {
  try {
    const [{ log, checkpointed }] = db.pragma("wal_checkpoint(PASSIVE)");
    return log === checkpointed;
  } catch (err) {
    parentPort.postMessage({ error: String(err) });
    return false;
  }
};
const timer = setInterval(checkpoint, workerData.everyMs);
parentPort.on("message", (m) => {
  if (m === "catch-up") {
    parentPort.postMessage({ caughtUp: checkpoint() });
    return;
  }
  clearInterval(timer);
  try { db.pragma("wal_checkpoint(PASSIVE)"); } finally { db.close(); }
  parentPort.close();
});
`;

export class Checkpointer {
  private readonly worker: Worker;
  private readonly exited: Promise<void>;
  private readonly waiting: ((caughtUp: boolean) => void)[] = [];
  private closing = false;
  /** The worker is gone (its script failed, or it crashed): nothing it was asked will be answered. */
  dead = false;

  constructor(file: string, onError: (message: string) => void, everyMs = 50) {
    const driver = fileURLToPath(import.meta.resolve("better-sqlite3"));
    // No execArgv of the parent: its flags (`--input-type=module`, a loader) would make the
    // worker's CommonJS source fail to run.
    this.worker = new Worker(SOURCE, { eval: true, execArgv: [], workerData: { file, driver, everyMs } });
    this.worker.on("message", (m: { error?: string; caughtUp?: boolean }) => {
      if (m.error) onError(m.error);
      if (m.caughtUp !== undefined) this.answer(m.caughtUp);
    });
    this.worker.on("error", (err) => onError(`the checkpoint worker failed: ${String(err)}`));
    this.worker.unref();
    this.exited = new Promise((resolve) =>
      this.worker.once("exit", () => {
        // A writer waiting for an answer would wait for ever: answer it, and every later ask.
        this.dead = true;
        while (this.waiting.length > 0) this.answer(false);
        resolve();
      }),
    );
  }

  /** Checkpoints now; true when the whole WAL is in the database file, so the next write restarts it. */
  catchUp(): Promise<boolean> {
    if (this.dead) return Promise.resolve(false);
    return new Promise((resolve) => {
      // Writes wait for this answer: keep the process alive until it comes.
      if (this.waiting.length === 0) this.worker.ref();
      this.waiting.push(resolve);
      this.worker.postMessage("catch-up");
    });
  }

  private answer(caughtUp: boolean): void {
    this.waiting.shift()?.(caughtUp);
    if (this.waiting.length === 0 && !this.closing) this.worker.unref();
  }

  /** Runs a last checkpoint and closes the worker's connection. */
  async close(): Promise<void> {
    this.closing = true;
    this.worker.ref(); // keep the process alive until the last checkpoint is done
    this.worker.postMessage("close");
    await this.exited;
    for (const w of this.waiting.splice(0)) w(false);
  }
}
