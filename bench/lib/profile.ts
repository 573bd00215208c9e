/** Reads a V8 .cpuprofile (node --cpu-prof) and sums self time by function and by package. */
import fs from "node:fs";
import path from "node:path";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  totalMs: number;
  busyMs: number;
  functions: { name: string; where: string; ms: number; pct: number }[];
  packages: { name: string; ms: number; pct: number }[];
}

/** The file of a frame, without the scheme, and the compiled server's `dist/` named as its source. */
const fileOf = (url: string) => url.replace(/^file:\/\//, "").replace(`${process.cwd()}/dist/`, `${process.cwd()}/`);

function where(url: string, line: number): string {
  if (!url) return "";
  const clean = fileOf(url);
  const nm = clean.lastIndexOf("node_modules/");
  const rel = nm >= 0 ? clean.slice(nm + "node_modules/".length) : path.relative(process.cwd(), clean);
  return `${rel}:${line + 1}`;
}

function packageOf(node: ProfileNode): string {
  const { url, functionName } = node.callFrame;
  if (!url) {
    if (functionName.startsWith("(")) return functionName;
    return "(native / V8 builtins)";
  }
  const clean = fileOf(url);
  const nm = clean.lastIndexOf("node_modules/");
  if (nm >= 0) {
    const rest = clean.slice(nm + "node_modules/".length).split("/");
    return rest[0]!.startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  if (clean.startsWith("node:")) return "node core";
  const rel = path.relative(process.cwd(), clean);
  return rel.startsWith("..") ? clean : rel.split("/").slice(0, 2).join("/");
}

export function summarize(file: string, top = 25): ProfileSummary {
  const profile = JSON.parse(fs.readFileSync(file, "utf8")) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    // The delta after a sample is the time attributed to it.
    const dt = (profile.timeDeltas[i + 1] ?? 0) / 1000;
    self.set(id, (self.get(id) ?? 0) + dt);
  }
  const fns = new Map<string, { name: string; where: string; ms: number }>();
  const pkgs = new Map<string, number>();
  let totalMs = 0;
  let idleMs = 0;
  for (const [id, ms] of self) {
    const node = byId.get(id)!;
    totalMs += ms;
    if (node.callFrame.functionName === "(idle)") idleMs += ms;
    const name = node.callFrame.functionName || "(anonymous)";
    const w = where(node.callFrame.url, node.callFrame.lineNumber);
    const key = `${name}\u0000${w}`;
    const f = fns.get(key) ?? { name, where: w, ms: 0 };
    f.ms += ms;
    fns.set(key, f);
    const p = packageOf(node);
    pkgs.set(p, (pkgs.get(p) ?? 0) + ms);
  }
  const busyMs = totalMs - idleMs;
  const pct = (ms: number) => (busyMs > 0 ? (ms / busyMs) * 100 : 0);
  return {
    totalMs,
    busyMs,
    functions: [...fns.values()]
      .filter((f) => f.name !== "(idle)")
      .sort((a, b) => b.ms - a.ms)
      .slice(0, top)
      .map((f) => ({ ...f, pct: pct(f.ms) })),
    packages: [...pkgs]
      .filter(([name]) => name !== "(idle)")
      .sort((a, b) => b[1] - a[1])
      .slice(0, 15)
      .map(([name, ms]) => ({ name, ms, pct: pct(ms) })),
  };
}

export function renderSummary(title: string, s: ProfileSummary): string {
  const lines = [
    `### ${title}`,
    `profiled ${(s.totalMs / 1000).toFixed(1)} s, busy ${(s.busyMs / 1000).toFixed(1)} s (percentages are of busy time)`,
    "",
    "self time by package:",
    ...s.packages.map((p) => `  ${p.pct.toFixed(1).padStart(5)}%  ${p.name}`),
    "",
    "top self-time functions:",
    ...s.functions.map((f) => `  ${f.pct.toFixed(1).padStart(5)}%  ${f.name}  ${f.where}`),
  ];
  return lines.join("\n");
}
