/**
 * `herald backup DEST` (server/cli/backup.ts): its usage, its refusals (no store, an existing DEST),
 * and a copy of a stopped server's store that a new server opens. The copy of a store while its
 * server writes, and the restore drill, are test/docs-pages.test.ts's.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import type { Message } from "../shared/protocol.js";
import { startCli, startServer, tempDir } from "./helpers.js";

const run = (args: string[], env: Record<string, string> = {}) => startCli(args, { HERALD_DATA_DIR: "", ...env }).done;

describe("cli - backup", () => {
  let work: string;
  before(() => {
    work = tempDir("herald-backup-");
  });
  after(() => {
    fs.rmSync(work, { recursive: true, force: true });
  });

  it("--help exits 0 and the command list names it; a missing DEST or a bad flag exits 2", async () => {
    const [help, top, none, extra, flag] = await Promise.all([
      run(["backup", "--help"]),
      run(["--help"]),
      run(["backup"]),
      run(["backup", "a.db", "b.db"]),
      run(["backup", "a.db", "--bogus"]),
    ]);
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /Usage: herald backup DEST/);
    assert.match(help.stdout, /--data-dir DIR/);
    assert.match(top.stdout, /backup DEST/);
    for (const usage of [none, extra, flag]) assert.equal(usage.code, 2, usage.stderr);
    assert.match(none.stderr, /expected DEST/);
    assert.match(flag.stderr, /bogus/);
  });

  it("refuses, with exit 1, a data directory without a store and a DEST that exists, and writes nothing", async () => {
    const empty = path.join(work, "empty");
    const kept = path.join(work, "kept.db");
    fs.writeFileSync(kept, "keep");
    const store = tempDir("herald-backup-store-");
    const server = await startServer({ dataDir: store, store: "sqlite" });
    await server.close();
    const [noStore, exists] = await Promise.all([
      run(["backup", path.join(work, "x.db"), "--data-dir", empty]),
      run(["backup", kept], { HERALD_DATA_DIR: store }),
    ]);
    fs.rmSync(store, { recursive: true, force: true });
    assert.equal(noStore.code, 1);
    assert.match(noStore.stderr, /no Herald store at .*herald\.db/);
    assert.equal(fs.existsSync(empty), false, "no data directory is made");
    assert.equal(fs.existsSync(path.join(work, "x.db")), false);
    assert.equal(exists.code, 1);
    assert.match(exists.stderr, /exists; a backup never overwrites a file/);
    assert.equal(fs.readFileSync(kept, "utf8"), "keep");
  });

  it("copies a stopped server's store to DEST alone, and a server started on the copy has its messages", async () => {
    const store = path.join(work, "store");
    const server = await startServer({ dataDir: store, store: "sqlite" });
    for (let n = 1; n <= 3; n++) {
      const res = await fetch(`${server.url}/api/v1/publish`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-herald-user": "alice" },
        body: JSON.stringify({ id: `b-${n}`, topic: "room:bk", payload: { n } }),
      });
      assert.equal(res.status, 200);
    }
    await server.close();

    const folder = path.join(work, "backups");
    fs.mkdirSync(folder);
    const dest = path.join(folder, "herald.db");
    const copied = await run(["backup", dest, "--data-dir", store]);
    assert.equal(copied.code, 0, copied.stderr);
    const result = JSON.parse(copied.stdout) as Record<string, unknown>;
    assert.deepEqual(Object.keys(result), ["backup", "source", "bytes", "pages", "schema", "topics"]);
    assert.equal(result.backup, dest);
    assert.equal(result.source, path.join(store, "herald.db"));
    assert.equal(result.bytes, fs.statSync(dest).size);
    assert.equal(result.schema, 2);
    assert.deepEqual(fs.readdirSync(folder), ["herald.db"], "no partial, -wal or -shm file is left");

    const restored = await startServer({ dataDir: folder, store: "sqlite" });
    try {
      const res = await fetch(`${restored.url}/api/v1/topics/room:bk/messages`, {
        headers: { "x-herald-user": "bob" },
      });
      const { messages } = (await res.json()) as { messages: Message[] };
      assert.deepEqual(
        messages.map((m) => [m.seq, m.id, m.payload]),
        [1, 2, 3].map((n) => [n, `b-${n}`, { n }]),
      );
    } finally {
      await restored.close();
    }
  });
});
