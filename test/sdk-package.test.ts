/**
 * The SDK as another app gets it: `import ... from "herald/client"` from a folder outside the repo,
 * resolved through package.json `exports` to the built dist/ (run with plain node, not tsx, so
 * nothing here falls back to the TypeScript sources), with its types resolving for tsc.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { after, before, it } from "node:test";
import { promisify } from "node:util";
import { ROOT, startServer, type TestServer, tempDir } from "./helpers.js";

const run = promisify(execFile);

const APP_MJS = `import { HeraldClient } from "herald/client";

const client = new HeraldClient({
  url: process.argv[2],
  clientId: "sdk-package-app",
  user: "alice",
  socketOptions: { transports: ["websocket"] },
});
client.connect();
const received = new Promise((resolve) => {
  client.subscribe("room:sdk-package", (m) => resolve({ seq: m.seq, topic: m.topic, from: m.from, payload: m.payload }));
});
const { seq } = await client.publish("room:sdk-package", { text: "hello" });
console.log(JSON.stringify({ published: seq, received: await received }));
await client.close();
`;

// The @ts-expect-error fails the compile if HeraldClient came through as `any` rather than typed.
const APP_TS = `import { HeraldClient, type Message } from "herald/client";

const client = new HeraldClient({ url: "http://127.0.0.1:1", clientId: "types", user: "alice" });
export const seq: Promise<number> = client.publish("room:x", { text: "hi" }).then((ok) => ok.seq);
export const topic = (m: Message): string => m.topic;
// @ts-expect-error a topic is required
client.publish();
`;

let server: TestServer;
let app: string;

before(async () => {
  for (const file of ["dist/shared/client/index.js", "dist/shared/client/index.d.ts"]) {
    assert.ok(fs.existsSync(path.join(ROOT, file)), `${file} is missing: run \`npm run build\` first`);
  }
  server = await startServer();
  app = tempDir("herald-sdk-app-");
  fs.writeFileSync(path.join(app, "package.json"), JSON.stringify({ name: "sdk-app", private: true, type: "module" }));
  fs.mkdirSync(path.join(app, "node_modules"));
  // What `npm install ../herald` makes of a folder dependency.
  fs.symlinkSync(ROOT, path.join(app, "node_modules", "herald"), "dir");
  fs.writeFileSync(path.join(app, "app.mjs"), APP_MJS);
  fs.writeFileSync(path.join(app, "app.ts"), APP_TS);
});

after(async () => {
  await server?.close();
  if (app) fs.rmSync(app, { recursive: true, force: true });
});

it("sdk package - an app outside the repo imports herald/client by name, publishes and receives", async () => {
  const { stdout } = await run(process.execPath, ["app.mjs", server.url], { cwd: app, timeout: 10_000 });
  assert.deepEqual(JSON.parse(stdout), {
    published: 1,
    received: { seq: 1, topic: "room:sdk-package", from: "alice", payload: { text: "hello" } },
  });
});

it("sdk package - the types of herald/client resolve for tsc in that app", async () => {
  const tsc = path.join(ROOT, "node_modules/typescript/bin/tsc");
  const args = ["--noEmit", "--module", "nodenext", "--moduleResolution", "nodenext", "--strict", "app.ts"];
  // tsc reports its errors on stdout; rethrow with them so that a failure says what did not resolve.
  await run(process.execPath, [tsc, ...args], { cwd: app, timeout: 15_000 }).catch((err: { stdout?: string }) => {
    assert.fail(`tsc failed:\n${err.stdout ?? err}`);
  });
});

it("sdk package - no test code ships: nothing that npm builds into dist/ imports node:test", () => {
  const shipped = (dir: string): string[] =>
    fs
      .readdirSync(path.join(ROOT, dir), { recursive: true, encoding: "utf8" })
      .filter((f) => f.endsWith(".ts") || f.endsWith(".tsx"))
      .map((f) => path.join(dir, f));
  const built = JSON.parse(fs.readFileSync(path.join(ROOT, "tsconfig.build.json"), "utf8")).include as string[];
  const offenders = built
    .flatMap(shipped)
    .filter((f) => /from "node:test"|from "node:assert/.test(fs.readFileSync(path.join(ROOT, f), "utf8")));
  assert.deepEqual(offenders, []);
});
