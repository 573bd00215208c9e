/**
 * The operator pages of docs/ against the code, so that either drifting fails here:
 * troubleshooting.md has one `## CODE` section per code of shared/errors.ts, in the table's order;
 * operating.md names every variable server/config.ts reads (its SETTINGS); sdk.md names every
 * export of the SDK, every public member of HeraldClient and every option and event; and
 * operating.md's backup and restore drill works against a real server, with the command as the page
 * shows it.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { io } from "socket.io-client";
import ts from "typescript";
import { SETTINGS } from "../server/config.js";
import * as sdk from "../shared/client/index.js";
import { ERROR_CODES, ERRORS } from "../shared/errors.js";
import type { Message, PublishOk } from "../shared/protocol.js";
import { collect, connect, type RawSocket, ROOT, sleep, startCli, startServer, tempDir } from "./helpers.js";

const doc = (name: string): string => fs.readFileSync(path.join(ROOT, "docs", name), "utf8");

/** The `## ` headings of a page and the text under each, in order. */
function sections(text: string): { heading: string; body: string }[] {
  const parts = text.split(/^## /m).slice(1);
  return parts.map((part) => {
    const cut = part.indexOf("\n");
    return { heading: part.slice(0, cut).trim(), body: part.slice(cut + 1) };
  });
}

/** Every identifier inside the page's code blocks and code spans: what the page names as code. */
function codeNames(text: string): Set<string> {
  const names = new Set<string>();
  const blocks = [...text.matchAll(/^```[^\n]*\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
  const prose = text.replace(/^```[^\n]*\n[\s\S]*?^```$/gm, "");
  const spans = [...prose.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
  for (const code of [...blocks, ...spans]) {
    for (const [name] of code.matchAll(/[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*/g)) {
      names.add(name);
      for (const part of name.split(".")) names.add(part);
    }
  }
  return names;
}

describe("docs - troubleshooting.md", () => {
  const pages = sections(doc("troubleshooting.md"));

  it("has one `## CODE` section per error code, in the table's order, and none for a code that does not exist", () => {
    const codes = pages.map((s) => s.heading).filter((heading) => /^[A-Z][A-Z0-9_]*$/.test(heading));
    assert.deepEqual(codes, ERROR_CODES);
  });

  it("gives each code's HTTP status from the table", () => {
    for (const code of ERROR_CODES) {
      const section = pages.find((s) => s.heading === code)!;
      assert.ok(section.body.includes(`(HTTP ${ERRORS[code].status})`), `${code}: (HTTP ${ERRORS[code].status})`);
    }
  });

  it("ends with the symptoms that have no code", () => {
    assert.equal(pages.at(-1)?.heading, "Symptoms without a code");
  });
});

describe("docs - operating.md settings", () => {
  const text = doc("operating.md");

  it("names every variable server/config.ts reads", () => {
    const missing = SETTINGS.filter((name) => !text.includes(`\`${name}\``));
    assert.deepEqual(missing, []);
  });

  it("gives each setting the default of the README's table, which test/config.test.ts checks against the code", () => {
    const table = (page: string): Map<string, string> => {
      const rows = new Map<string, string>();
      for (const line of page.split("\n").filter((l) => l.startsWith("| `"))) {
        const [, name, value] = line.split("|").map((cell) => cell.trim());
        if (name && value) rows.set(name.replaceAll("`", ""), value);
      }
      return rows;
    };
    const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
    const documented = table(readme.slice(readme.indexOf("\n## Settings\n"), readme.indexOf("\n## Speed\n")));
    const operating = table(text);
    assert.ok(documented.size > 20, "the README's settings table was found");
    for (const [name, value] of documented) {
      assert.ok(operating.get(name)?.startsWith(value), `${name}: ${operating.get(name)} should start with ${value}`);
    }
  });
});

/** A class's or interface's public member names, with those of the classes it extends (through relative imports). */
function publicMembers(file: string, name: string): string[] {
  const source = ts.createSourceFile(file, fs.readFileSync(file, "utf8"), ts.ScriptTarget.Latest, true);
  const names: string[] = [];
  const hidden = (node: ts.Node) =>
    ts.canHaveModifiers(node) &&
    (ts.getModifiers(node) ?? []).some(
      (m) => m.kind === ts.SyntaxKind.PrivateKeyword || m.kind === ts.SyntaxKind.ProtectedKeyword,
    );
  const add = (members: ts.NodeArray<ts.ClassElement | ts.TypeElement>) => {
    for (const member of members) {
      if (ts.isConstructorDeclaration(member) || hidden(member) || !member.name) continue;
      if (ts.isPrivateIdentifier(member.name) || !ts.isIdentifier(member.name)) continue;
      if (!names.includes(member.name.text)) names.push(member.name.text);
    }
  };
  for (const statement of source.statements) {
    if (ts.isClassDeclaration(statement) && statement.name?.text === name) {
      add(statement.members);
      const base = statement.heritageClauses?.find((h) => h.token === ts.SyntaxKind.ExtendsKeyword)?.types[0];
      if (base && ts.isIdentifier(base.expression)) {
        const parent = base.expression.text;
        const from = source.statements
          .filter(ts.isImportDeclaration)
          .find((i) => i.getText().match(new RegExp(`\\b${parent}\\b`)))?.moduleSpecifier;
        if (from && ts.isStringLiteral(from) && from.text.startsWith(".")) {
          const parentFile = path.resolve(path.dirname(file), from.text.replace(/\.js$/, ".ts"));
          for (const inherited of publicMembers(parentFile, parent))
            if (!names.includes(inherited)) names.push(inherited);
        }
      }
    }
    if (ts.isInterfaceDeclaration(statement) && statement.name.text === name) add(statement.members);
    if (ts.isTypeAliasDeclaration(statement) && statement.name.text === name && ts.isTypeLiteralNode(statement.type)) {
      add(statement.type.members);
    }
  }
  assert.ok(names.length > 0, `${name} found in ${file}`);
  return names;
}

/** Every name shared/client/index.ts exports, types included. */
function sdkExports(): string[] {
  const file = path.join(ROOT, "shared/client/index.ts");
  const source = ts.createSourceFile(file, fs.readFileSync(file, "utf8"), ts.ScriptTarget.Latest, true);
  const names: string[] = [];
  for (const statement of source.statements) {
    if (!ts.isExportDeclaration(statement) || !statement.exportClause || !ts.isNamedExports(statement.exportClause)) {
      continue;
    }
    for (const element of statement.exportClause.elements) names.push(element.name.text);
  }
  return names;
}

describe("docs - sdk.md", () => {
  const text = doc("sdk.md");
  const named = codeNames(text);
  const client = path.join(ROOT, "shared/client/client.ts");

  it("names every public method and property of HeraldClient as client.NAME", () => {
    const members = publicMembers(client, "HeraldClient");
    for (const member of ["connect", "publish", "subscribe", "close", "on"]) assert.ok(members.includes(member));
    for (const member of members) assert.ok(member in sdk.HeraldClient.prototype, `${member} is on the class`);
    assert.deepEqual(
      members.filter((member) => !named.has(`client.${member}`)),
      [],
    );
  });

  it("heads no section with a client member that does not exist", () => {
    const members = publicMembers(client, "HeraldClient");
    const headings = text.split("\n").filter((line) => line.startsWith("### "));
    for (const heading of headings) {
      for (const [, member] of heading.matchAll(/`client\.(\w+)/g)) {
        assert.ok(members.includes(member!), `client.${member} in ${heading}`);
      }
    }
  });

  it("names every export of the SDK, types included", () => {
    const exports = sdkExports();
    for (const value of Object.keys(sdk)) assert.ok(exports.includes(value), `${value} is found among the exports`);
    assert.deepEqual(
      exports.filter((name) => !named.has(name)),
      [],
    );
  });

  it("names every option and every event", () => {
    const subscription = path.join(ROOT, "shared/client/subscription.ts");
    const lists = [
      publicMembers(client, "HeraldClientOptions"),
      publicMembers(client, "HeraldClientEvents"),
      publicMembers(client, "PublishOptions"),
      publicMembers(client, "RequestOptions"),
      publicMembers(client, "HistoryOptions"),
      publicMembers(subscription, "SubscribeOptions"),
      publicMembers(path.join(ROOT, "shared/client/backoff.ts"), "BackoffOptions"),
    ];
    assert.deepEqual(
      lists.flat().filter((name) => !named.has(name)),
      [],
    );
  });
});

/** The `herald` command as bin/herald.js runs it, from source. */
const herald = (args: string[], env: Record<string, string>) => startCli(args, env).done;

/** Every message of a topic over the HTTP API, in pages of 500. */
async function readAll(url: string, topic: string, user: string): Promise<Message[]> {
  const all: Message[] = [];
  for (;;) {
    const after = all.at(-1)?.seq ?? 0;
    const res = await fetch(`${url}/api/v1/topics/${topic}/messages?after=${after}&limit=500`, {
      headers: { "x-herald-user": user },
    });
    assert.equal(res.status, 200);
    const { messages } = (await res.json()) as { messages: Message[] };
    all.push(...messages);
    if (messages.length < 500) return all;
  }
}

describe("docs - operating.md backup and restore drill", () => {
  it("herald backup copies a store while the server writes; a server on the restored copy has its messages, seqs and cursors", async () => {
    // The command as operating.md shows it: the data directory in HERALD_DATA_DIR, DEST as the argument.
    const shown = /^HERALD_DATA_DIR=\S+ npx herald backup (\S+)$/m.exec(doc("operating.md"));
    assert.ok(shown, "operating.md shows `HERALD_DATA_DIR=DIR npx herald backup DEST`");
    const work = tempDir("herald-drill-");
    const dataDir = path.join(work, "data");
    const backupFile = path.join(work, path.basename(shown[1]!));
    const topic = "room:drill";
    const answered = new Map<string, PublishOk>();
    try {
      const server = await startServer({ dataDir, store: "sqlite" });
      const reader = await connect(server.url, { user: "bob", clientId: "drill-reader" });
      const got = collect(reader);
      await reader.emitWithAck("subscribe", { topic });
      const writer = await connect(server.url, { user: "alice", clientId: "drill-writer" });
      const publish = async (id: string, n: number) => {
        const reply = await writer.emitWithAck("publish", { id, topic, payload: { n } });
        assert.ok(reply.ok, JSON.stringify(reply));
        answered.set(id, { seq: reply.seq, ts: reply.ts, duplicate: reply.duplicate });
      };
      for (let n = 1; n <= 100; n++) await publish(`before-${n}`, n);
      await got.until(100);
      // The reader processed 40 of them: its durable cursor is in the store before the backup.
      assert.ok((await reader.emitWithAck("ack", { topic, seq: 40 })).ok);
      reader.close();

      // "Taking a backup": online, with the server taking publishes all the while.
      let writing = true;
      let during = 0;
      const load = (async () => {
        while (writing) {
          await publish(`during-${++during}`, 100 + during);
          await sleep(2);
        }
      })();
      const run = await herald(["backup", backupFile], { HERALD_DATA_DIR: dataDir });
      writing = false;
      await load;
      assert.equal(run.code, 0, run.stderr);
      const result = JSON.parse(run.stdout) as { backup: string; schema: number; topics: number };
      assert.equal(result.backup, backupFile);
      assert.equal(result.schema, 2);
      assert.ok(during > 1, "publishes were answered while the backup ran");
      writer.close();
      await server.close();

      // "Restoring": an empty data directory with the copy as herald.db, and a server started on it.
      const restoredDir = path.join(work, "restored");
      fs.mkdirSync(restoredDir);
      fs.copyFileSync(backupFile, path.join(restoredDir, "herald.db"));
      const restored = await startServer({ dataDir: restoredDir, store: "sqlite" });
      try {
        const messages = await readAll(restored.url, topic, "bob");
        // A consistent snapshot: every message answered before the backup began, and then a gapless
        // prefix of those answered while it ran, each at the seq its publisher was answered.
        assert.ok(messages.length >= 100 && messages.length <= answered.size, `${messages.length} messages`);
        assert.deepEqual(
          messages.map((m) => m.seq),
          messages.map((_, i) => i + 1),
        );
        for (const m of messages) {
          assert.equal(answered.get(m.id)?.seq, m.seq, m.id);
          assert.equal(m.from, "alice");
        }
        assert.deepEqual(messages[0]!.payload, { n: 1 });

        // The reader's cursor came with the copy: it resumes after seq 40. The listener is on before
        // the connect, as the resumed stream's first batch may come in the same read as the handshake.
        const again: RawSocket = io(restored.url, {
          auth: { clientId: "drill-reader", user: "bob" },
          transports: ["websocket"],
          reconnection: false,
          forceNew: true,
          autoConnect: false,
        });
        const resumed = new Promise<Message[]>((resolve) => again.once("messages", resolve));
        again.connect();
        const [first] = await resumed;
        assert.equal(first?.topic, topic);
        assert.equal(first?.seq, 41);
        again.close();

        // The head came with it too: the next publish takes the next seq.
        const next = await connect(restored.url, { user: "alice", clientId: "drill-writer" });
        const reply = await next.emitWithAck("publish", { id: "after-restore", topic, payload: {} });
        assert.ok(reply.ok);
        assert.equal(reply.seq, messages.length + 1);
        next.close();
      } finally {
        await restored.close();
      }
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  });
});
