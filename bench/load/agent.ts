/**
 * A load process: driven over IPC by bench/lib/agent.ts. One role per process; its count and its
 * own CPU (process.cpuUsage) are reported at each snap, so the table can print the load's CPU.
 */
import { SqliteLoop } from "../peers/sqlite-loop.js";
import { StoreLatency } from "../peers/store-latency.js";
import { MqttPub, MqttSub, mqttLatency } from "./mqtt.js";
import { NatsPub, NatsRequester, NatsResponder, NatsSub, natsLatency } from "./nats.js";
import { clock, type Role } from "./role.js";
import { SioHistory, SioPub, SioRequester, SioResponder, SioSub, sioLatency } from "./sio.js";

// biome-ignore lint/suspicious/noExplicitAny: options come over IPC as JSON, each role checks its own.
type Opts = any;
const ROLES: Record<string, (o: Opts) => Role> = {
  "sio-pub": (o) => new SioPub(o),
  "sio-sub": (o) => new SioSub(o),
  "sio-latency": (o) => sioLatency(o),
  "sio-history": (o) => new SioHistory(o),
  "sio-requester": (o) => new SioRequester(o),
  "sio-responder": (o) => new SioResponder(o),
  "mqtt-pub": (o) => new MqttPub(o),
  "mqtt-sub": (o) => new MqttSub(o),
  "mqtt-latency": (o) => mqttLatency(o),
  "nats-pub": (o) => new NatsPub(o),
  "nats-sub": (o) => new NatsSub(o),
  "nats-latency": (o) => natsLatency(o),
  "nats-requester": (o) => new NatsRequester(o),
  "nats-responder": (o) => new NatsResponder(o),
  "sqlite-loop": (o) => new SqliteLoop(o),
  "store-latency": (o) => new StoreLatency(o),
};

let role: Role | undefined;

function snap() {
  const cpu = process.cpuUsage();
  return { count: role?.count() ?? 0, cpuUs: cpu.user + cpu.system, at: clock() };
}

async function waitCount(n: number, timeoutMs: number) {
  const deadline = performance.now() + timeoutMs;
  while ((role?.count() ?? 0) < n && performance.now() < deadline) await new Promise((r) => setTimeout(r, 2));
  return snap();
}

async function handle(cmd: string, args: Opts): Promise<unknown> {
  switch (cmd) {
    case "setup": {
      const make = ROLES[args.role as string];
      if (!make) throw new Error(`unknown role ${args.role}`);
      role = make(args.opts);
      return role.setup();
    }
    case "go":
      role!.go();
      return undefined;
    case "mark":
      role?.mark?.();
      return snap();
    case "snap":
      return snap();
    case "waitCount":
      return waitCount(args.n, args.timeoutMs);
    case "stop":
      return role ? role.stop() : {};
    default:
      throw new Error(`unknown command ${cmd}`);
  }
}

process.on("message", (raw) => {
  const { id, cmd, args } = raw as { id: number; cmd: string; args: Opts };
  if (cmd === "exit") {
    process.disconnect?.();
    setTimeout(() => process.exit(0), 10).unref();
    return;
  }
  handle(cmd, args).then(
    (value) => process.send!({ id, ok: true, value }),
    (err: unknown) => process.send!({ id, ok: false, error: err instanceof Error ? err.message : String(err) }),
  );
});
process.on("disconnect", () => process.exit(0));
