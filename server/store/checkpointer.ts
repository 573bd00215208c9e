/**
 * WAL checkpoints off the event loop. A checkpoint copies the WAL into the database file and
 * fsyncs both; run by SQLite's auto-checkpoint inside a commit it would stop the event loop for two
 * fsyncs every thousand pages (10 ms and more on a slow disk). So the writer turns auto-checkpoint
 * off and this worker thread, with its own connection, runs PASSIVE checkpoints: they never wait
 * for the writer, and the writer restarts the WAL from the top once it has all been copied.
 * (Under a load with no pause that never happens; the writer then truncates the WAL itself, see
 * SqliteStore.boundWal. A RESTART checkpoint here would deadlock with the writer's transaction
 * until the busy timeout, which is why this worker never blocks writers.)
 */
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";

// Plain JavaScript run as the worker's script, so that it needs no TypeScript loader or build step.
const SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const Database = require(workerData.driver);
const db = new Database(workerData.file);
db.pragma("busy_timeout = 5000");
const timer = setInterval(() => {
  try {
    db.pragma("wal_checkpoint(PASSIVE)");
  } catch (err) {
    parentPort.postMessage({ error: String(err) });
  }
}, workerData.everyMs);
parentPort.on("message", () => {
  clearInterval(timer);
  try { db.pragma("wal_checkpoint(PASSIVE)"); } finally { db.close(); }
  parentPort.close();
});
`;

export class Checkpointer {
  private readonly worker: Worker;
  private readonly exited: Promise<void>;

  constructor(file: string, onError: (message: string) => void, everyMs = 250) {
    const driver = fileURLToPath(import.meta.resolve("better-sqlite3"));
    this.worker = new Worker(SOURCE, { eval: true, workerData: { file, driver, everyMs } });
    this.worker.on("message", (m: { error?: string }) => m.error && onError(m.error));
    this.worker.on("error", (err) => onError(String(err)));
    this.worker.unref();
    this.exited = new Promise((resolve) => this.worker.once("exit", () => resolve()));
  }

  /** Runs a last checkpoint and closes the worker's connection. */
  async close(): Promise<void> {
    this.worker.ref(); // keep the process alive until the last checkpoint is done
    this.worker.postMessage("close");
    await this.exited;
  }
}
