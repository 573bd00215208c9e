/**
 * Processes under test: each server runs in its own child process on port 0 with a temp data dir
 * and prints `listening on <url>`; its CPU and memory are read from /proc, so a figure can say
 * whether the server or the load was the limit.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

export const ROOT = path.resolve(import.meta.dirname, "../..");

const CLK_TCK = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU seconds (user + system) a process has used so far, or undefined once it is gone. */
export function procCpu(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name may hold spaces: the fields start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return undefined;
  }
}

/** Resident memory in bytes, or undefined once the process is gone. */
export function procRss(pid: number): number | undefined {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    const m = /VmRSS:\s+(\d+) kB/.exec(status);
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** The pid of a service already running on this machine (Mosquitto, nats-server), for its CPU. */
export function servicePid(name: string): number | undefined {
  try {
    const out = execFileSync("pgrep", ["-x", name]).toString().trim().split("\n")[0];
    return out ? Number(out) : undefined;
  } catch {
    return undefined;
  }
}

/** The direct children of a process (the node under strace). */
export function childPids(pid: number): number[] {
  try {
    const out: number[] = [];
    for (const task of fs.readdirSync(`/proc/${pid}/task`)) {
      const text = fs.readFileSync(`/proc/${pid}/task/${task}/children`, "utf8").trim();
      if (text) out.push(...text.split(" ").map(Number));
    }
    return out;
  } catch {
    return [];
  }
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export interface ServerProc {
  name: string;
  url: string;
  /** The process whose CPU and memory count as the server's. */
  pid: number;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** Sends a signal to a process that may have exited already. */
function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // gone already
  }
}

export interface SpawnOptions {
  name: string;
  command: string;
  args: string[];
  env?: Record<string, string>;
  /** Removed after the server stops. */
  dataDir?: string;
  /** When the server runs under a wrapper (strace), its pid is the wrapper's child. */
  wrapped?: boolean;
  startMs?: number;
}

/** Starts a server and resolves once it printed `listening on <url>`. */
export function spawnServer(options: SpawnOptions): Promise<ServerProc> {
  const child = spawn(options.command, options.args, {
    cwd: ROOT,
    env: { ...process.env, ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  // Everything the server prints is kept in bench/results/logs, to look into errors afterwards.
  const logDir = path.join(ROOT, "bench/results/logs");
  fs.mkdirSync(logDir, { recursive: true });
  const log = fs.createWriteStream(
    path.join(logDir, `${options.name.replace(/[^A-Za-z0-9]+/g, "-")}-${child.pid}.log`),
  );
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const cleanup = () => {
    if (options.dataDir) fs.rmSync(options.dataDir, { recursive: true, force: true });
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      cleanup();
      reject(new Error(`${options.name} did not start:\n${output.slice(-2000)}`));
    }, options.startMs ?? 20000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.length > 100_000) output = output.slice(-20_000);
      const match = /listening on ((?:http|mqtt):\/\/[^\s)]+)/.exec(output);
      if (!match) return;
      child.stdout!.off("data", onData);
      clearTimeout(timer);
      let pid = child.pid!;
      if (options.wrapped) pid = childPids(pid)[0] ?? pid;
      resolve({
        name: options.name,
        url: match[1]!,
        pid,
        child,
        async stop() {
          if (child.exitCode === null && child.signalCode === null) {
            // Signal the server itself: strace, told to stop, would detach and leave it running.
            // The wrapper ends when its tracee does.
            signal(pid, "SIGTERM");
            const t = setTimeout(() => {
              signal(pid, "SIGKILL");
              child.kill("SIGKILL");
            }, 6000);
            await exited;
            clearTimeout(t);
          }
          cleanup();
        },
      });
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      cleanup();
      reject(new Error(`${options.name} exited with ${code ?? signal}:\n${output.slice(-2000)}`));
    });
  });
}

export type Durability = "full" | "normal";

export interface HeraldSpawn {
  durability: Durability;
  /** Wrap the server in strace that delays every fsync/fdatasync by this many microseconds. */
  fsyncDelayUs?: number;
  /** Write a V8 CPU profile of the server into this directory. */
  cpuProfDir?: string;
  env?: Record<string, string>;
}

/**
 * The server as `npm start` runs it: compiled by tsc into dist/, rebuilt first when a source file
 * is newer. Under tsx, esbuild's keepNames wrapped every function the hub created per event (1.3%
 * of W1's profile then): what is measured should be what users run.
 */
function builtServer(): string {
  const main = path.join(ROOT, "dist/server/main.js");
  const builtAt = fs.existsSync(main) ? fs.statSync(main).mtimeMs : 0;
  const newer = ["server", "shared"].some((dir) =>
    fs
      .readdirSync(path.join(ROOT, dir), { recursive: true, encoding: "utf8" })
      .some((f) => f.endsWith(".ts") && fs.statSync(path.join(ROOT, dir, f)).mtimeMs > builtAt),
  );
  if (newer) execFileSync(path.join(ROOT, "node_modules/.bin/tsc"), ["-p", "tsconfig.build.json"], { cwd: ROOT });
  return main;
}

export function startHerald(options: HeraldSpawn): Promise<ServerProc> {
  const dataDir = tempDir("herald-bench-");
  const nodeArgs = [
    ...(options.cpuProfDir ? ["--cpu-prof", `--cpu-prof-dir=${options.cpuProfDir}`] : []),
    builtServer(),
  ];
  const env = {
    PORT: "0",
    HOST: "127.0.0.1",
    HERALD_DATA_DIR: dataDir,
    HERALD_DURABILITY: options.durability,
    HERALD_RATE_LIMIT: "100000000",
    // The load's subscribers are all user "bench" (distinct users would make W6's one room send
    // each join to every other member: presence, not idle memory): 10k connections with a room
    // and `broadcast` each are 20k subscriptions of one user, past the default 10000.
    HERALD_MAX_SUBSCRIPTIONS: "1000000",
    HERALD_LOG_LEVEL: "error",
    ...options.env,
  };
  const name = `herald ${options.durability}`;
  if (options.fsyncDelayUs !== undefined) {
    const d = String(options.fsyncDelayUs);
    return spawnServer({
      name,
      command: "strace",
      args: [
        "--seccomp-bpf",
        "-f",
        "-o",
        "/dev/null",
        "-e",
        "trace=fdatasync,fsync",
        "-e",
        `inject=fdatasync:delay_exit=${d}`,
        "-e",
        `inject=fsync:delay_exit=${d}`,
        process.execPath,
        ...nodeArgs,
      ],
      env,
      dataDir,
      wrapped: true,
    });
  }
  return spawnServer({ name, command: process.execPath, args: nodeArgs, env, dataDir });
}

/** A peer server from bench/peers, in its own process. */
export function startPeer(file: string, name: string, env: Record<string, string> = {}): Promise<ServerProc> {
  const dataDir = tempDir("herald-bench-peer-");
  return spawnServer({
    name,
    command: process.execPath,
    args: ["--import", "tsx", path.join(ROOT, "bench/peers", file)],
    env: { PORT: "0", DATA_DIR: dataDir, ...env },
    dataDir,
  });
}

export function hasCommand(cmd: string): boolean {
  try {
    execFileSync("which", [cmd], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}
