/**
 * The coordinator's side of a load process: each load generator runs in its own child process
 * (bench/load/agent.ts) and is driven over IPC: setup, go, snap (count and CPU so far), stop.
 */
import { type ChildProcess, fork } from "node:child_process";
import path from "node:path";
import { ROOT } from "./proc.js";

export interface Snap {
  /** What this role counts: acked publishes, deliveries received, connections, calls. */
  count: number;
  /** CPU microseconds (user + system) the load process used so far. */
  cpuUs: number;
  /** performance.timeOrigin + now() in the agent, in ms. */
  at: number;
}

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout };

export class Agent {
  private readonly child: ChildProcess;
  private nextId = 0;
  private readonly pending = new Map<number, Pending>();
  private exited = false;

  constructor(readonly label: string) {
    this.child = fork(path.join(ROOT, "bench/load/agent.ts"), [], {
      cwd: ROOT,
      execArgv: ["--import", "tsx"],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    this.child.on("message", (raw) => {
      const msg = raw as { id: number; ok: boolean; value?: unknown; error?: string };
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      clearTimeout(p.timer);
      if (msg.ok) p.resolve(msg.value);
      else p.reject(new Error(`${label}: ${msg.error}`));
    });
    this.child.once("exit", (code) => {
      this.exited = true;
      for (const p of this.pending.values()) {
        clearTimeout(p.timer);
        p.reject(new Error(`${label}: load process exited with ${code}`));
      }
      this.pending.clear();
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  call<T>(cmd: string, args: unknown = {}, timeoutMs = 60000): Promise<T> {
    if (this.exited) return Promise.reject(new Error(`${this.label}: load process is gone`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.label}: ${cmd} took over ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.child.send({ id, cmd, args });
    });
  }

  setup(role: string, opts: Record<string, unknown>, timeoutMs = 60000): Promise<unknown> {
    return this.call("setup", { role, opts }, timeoutMs);
  }
  go(): Promise<void> {
    return this.call("go");
  }
  /** Starts the measured window (latency histograms restart) and snaps. */
  mark(): Promise<Snap> {
    return this.call("mark");
  }
  snap(): Promise<Snap> {
    return this.call("snap");
  }
  /** Resolves once the count reaches n (or after timeoutMs) with the snap then. */
  waitCount(n: number, timeoutMs: number): Promise<Snap> {
    return this.call("waitCount", { n, timeoutMs }, timeoutMs + 5000);
  }
  /** Stops the load and returns what the role has to report (histogram summary, notes). */
  stop<T = Record<string, unknown>>(): Promise<T> {
    return this.call("stop", {}, 20000);
  }

  async close(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((resolve) => this.child.once("exit", () => resolve()));
    try {
      this.child.send({ id: -1, cmd: "exit", args: {} });
    } catch {
      // already closing
    }
    const t = setTimeout(() => this.child.kill("SIGKILL"), 3000);
    await gone;
    clearTimeout(t);
  }
}

export async function closeAll(agents: Agent[]): Promise<void> {
  await Promise.all(agents.map((a) => a.close()));
}
