/**
 * `herald backup DEST`: an online copy of the SQLite store through SQLite's backup API
 * (better-sqlite3's `db.backup()`), safe while the server writes. The store is in WAL mode, so the
 * copy's read transaction sees one consistent snapshot and never blocks the server's commits.
 *
 * The copy is made in one backup step: a backup made in several steps starts over whenever another
 * connection (the server's) writes between two of them, and under a steady load it would never end.
 * It is written beside DEST, checked (`PRAGMA quick_check`), flushed, and only then linked to its
 * name, so DEST is either a whole checked copy or absent. The live database is opened read-only.
 */
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import type Database from "better-sqlite3";
import { ConfigError, environment, loadConfig } from "../config.js";
import { CliError, positionals, usageError } from "./options.js";

export const BACKUP_HELP = `Usage: herald backup DEST [options]

Copies the store (herald.db in HERALD_DATA_DIR) to the new file DEST with SQLite's backup API,
while the server runs or not, and prints what it wrote as one JSON line. The copy is a consistent
snapshot of the moment the backup began; it is checked before it is given its name, and DEST is
never overwritten. To restore, stop the server and put the copy in an empty data directory as
herald.db (docs/operating.md "Backup and restore").

Options:
  --data-dir DIR     the server's data directory (default $HERALD_DATA_DIR or ./data)
  -h, --help         show this help

Example:
  HERALD_DATA_DIR=/var/lib/herald herald backup /var/backups/herald/herald-2026-12-04.db`;

/** The store's file in its data directory (server/store/sqlite-store.ts). */
export const DATABASE_FILE = "herald.db";

/** What the backup step copies at once: every page (better-sqlite3 caps a step at this). */
const ALL_PAGES = 0x7fffffff;

export interface BackupResult {
  backup: string;
  source: string;
  bytes: number;
  pages: number;
  /** The copy's `PRAGMA user_version`: the store's schema (see migrate in sqlite-store.ts). */
  schema: number;
  topics: number;
}

export async function backup(args: string[]): Promise<void> {
  let values: Record<string, string | boolean | undefined>;
  let given: string[];
  try {
    const parsed = parseArgs({
      args,
      options: { "data-dir": { type: "string" }, help: { type: "boolean", short: "h" } },
      allowPositionals: true,
      strict: true,
    });
    values = parsed.values;
    given = parsed.positionals;
  } catch (err) {
    throw usageError(err instanceof Error ? err.message : String(err));
  }
  if (values.help) {
    console.log(BACKUP_HELP);
    return;
  }
  const [dest] = positionals(given, ["DEST"], BACKUP_HELP) as [string];
  const dataDir = typeof values["data-dir"] === "string" ? values["data-dir"] : undefined;
  console.log(JSON.stringify(await backupStore(dataDirectory(dataDir), dest)));
}

/** The data directory as the server finds it: the flag, else HERALD_DATA_DIR, else ./data. */
function dataDirectory(flag: string | undefined): string {
  try {
    return loadConfig(environment(flag === undefined ? {} : { HERALD_DATA_DIR: flag })).dataDir;
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(err.message);
    throw err;
  }
}

/** Copies `dataDir`'s store to the new file `dest`; throws a CliError when it cannot. */
export async function backupStore(dataDir: string, dest: string): Promise<BackupResult> {
  const source = path.join(dataDir, DATABASE_FILE);
  const target = path.resolve(dest);
  if (!fs.existsSync(source)) {
    throw new CliError(`no Herald store at ${source} (give the server's --data-dir or HERALD_DATA_DIR)`);
  }
  if (fs.existsSync(target)) throw new CliError(`${target} exists; a backup never overwrites a file`);
  if (!fs.existsSync(path.dirname(target))) throw new CliError(`the folder of ${target} does not exist`);

  // Loaded only here, as serve.ts loads the server: the client commands need no SQLite driver.
  const { default: Driver } = await import("better-sqlite3");
  const partial = `${target}.${process.pid}.partial`;
  try {
    const live = new Driver(source, { readonly: true, fileMustExist: true });
    let pages: number;
    try {
      live.pragma("busy_timeout = 5000");
      ({ totalPages: pages } = await live.backup(partial, { progress: () => ALL_PAGES }));
    } finally {
      live.close();
    }
    const { schema, topics } = check(new Driver(partial, { fileMustExist: true }));
    flush(partial);
    name(partial, target);
    flushFolder(path.dirname(target));
    return { backup: target, source, bytes: fs.statSync(target).size, pages, schema, topics };
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError(`backup of ${source} failed: ${err instanceof Error ? err.message : err}`);
  } finally {
    for (const file of [partial, `${partial}-wal`, `${partial}-shm`]) fs.rmSync(file, { force: true });
  }
}

/**
 * Gives the copy its name. A hard link, not a rename: it fails if DEST appeared meanwhile instead of
 * replacing it. A file system without hard links (FAT, some network mounts) gets a rename.
 */
function name(partial: string, target: string): void {
  try {
    fs.linkSync(partial, target);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === "EEXIST") throw new CliError(`${target} exists; a backup never overwrites a file`);
    if (code !== "EPERM" && code !== "ENOTSUP" && code !== "EOPNOTSUPP" && code !== "ENOSYS") throw err;
    if (fs.existsSync(target)) throw new CliError(`${target} exists; a backup never overwrites a file`);
    fs.renameSync(partial, target);
  }
}

/** Checks the copy, opened as the server would open it; closing it leaves no -wal or -shm behind. */
function check(copy: Database.Database): { schema: number; topics: number } {
  try {
    const result = copy.pragma("quick_check", { simple: true });
    if (result !== "ok") throw new CliError(`the copy failed its check: ${result}`);
    const schema = copy.pragma("user_version", { simple: true }) as number;
    const { n } = copy.prepare("SELECT count(*) AS n FROM topics").get() as { n: number };
    return { schema, topics: n };
  } finally {
    copy.close();
  }
}

/** fsync, so that the copy survives a power loss. */
function flush(file: string): void {
  const fd = fs.openSync(file, "r");
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** The folder's fsync makes the new name durable; where a folder cannot be opened for it, skipped. */
function flushFolder(folder: string): void {
  try {
    flush(folder);
  } catch {
    // Not every platform lets a folder be fsynced (Windows); the copy itself is on disk.
  }
}
