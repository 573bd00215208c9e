/**
 * W4's storage floor: Herald's own store (`full`: answered after the fdatasync) appending at W4's
 * fixed rate in one process, with no network and no protocol, each append timed from the call to
 * its answer. No server built on this store can answer faster on this machine's disk. Runs as a
 * load role inside a bench/load/agent.ts process.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { SqliteStore } from "../../server/store/sqlite-store.js";
import { randomId } from "../../shared/client/index.js";
import { jsonPayload, type Pace, Publisher } from "../load/role.js";

export class StoreLatency extends Publisher<SqliteStore> {
  private dir = "";
  private readonly payload = jsonPayload();
  private readonly json = JSON.stringify(this.payload);

  constructor(pace: Pace) {
    super({ ...pace, timed: true });
  }

  async setup() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), "herald-bench-store-"));
    this.conns = [new SqliteStore({ dataDir: this.dir, durability: "full" })];
    return {};
  }

  protected publish(store: SqliteStore, _n: number, answered: (error?: string) => void): void {
    store.append({ id: randomId(), topic: "room:bench", from: "bench", payload: this.payload, json: this.json }).then(
      () => answered(),
      (err: unknown) => answered(String(err)),
    );
  }

  protected async close() {
    await this.conns[0]?.close();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
