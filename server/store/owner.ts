/**
 * One store per data directory. The SQLite store keeps each topic's head in memory and assigns
 * seqs from it, so a second process on the same files would hand out the same seqs and have its
 * publishes refused one by one as INTERNAL. Instead the second one does not start: `herald.pid`
 * names the process that owns the directory, as PostgreSQL's `postmaster.pid` does. A file left by
 * a process that is gone (SIGKILL, a crash) is taken over.
 */
import fs from "node:fs";
import path from "node:path";

/** Directories owned by a store of this process (a second store here would break the same way). */
const owned = new Set<string>();

export class DataDirOwner {
  private readonly file: string;

  constructor(dataDir: string) {
    this.file = path.join(path.resolve(dataDir), "herald.pid");
    if (owned.has(this.file)) throw new Error(`${dataDir} is in use by another store of this process`);
    for (;;) {
      try {
        fs.writeFileSync(this.file, `${process.pid}\n`, { flag: "wx" });
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      }
      const pid = Number.parseInt(fs.readFileSync(this.file, "utf8"), 10);
      if (pid !== process.pid && alive(pid)) {
        throw new Error(
          `${dataDir} is in use by process ${pid} (${this.file}); stop it first, or use another HERALD_DATA_DIR`,
        );
      }
      // Left by a process that is gone: take it over (another starting at once may win the race).
      fs.rmSync(this.file, { force: true });
    }
    owned.add(this.file);
  }

  release(): void {
    owned.delete(this.file);
    fs.rmSync(this.file, { force: true });
  }
}

function alive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, under another user.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
